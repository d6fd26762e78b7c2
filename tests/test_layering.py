"""One layering rule everywhere: api → service → repository → models (STYLE.md).

Routes parse, authorise through a dependency, call the service layer and shape the answer;
they run no SQL. Repositories query and return rows or None; the HTTP-ish errors belong to
the service layer. Role checks are `Annotated` dependencies in each service's
`dependencies.py`, naming `Role` members, never plain strings. Rows become response models
in one module per service (`shaping.py`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.registry import SERVICE_NAMES, WITH_MIGRATIONS
from shared.vocabulary import Role

ROOT = Path(__file__).resolve().parent.parent
SERVICES = SERVICE_NAMES
# The services whose rows are shaped in one `shaping.py`; referral is split on its own branch.
SHAPED_SERVICES = ("directory", "consent", "gateway")
# The directory's resolution answer is being moved to a shared contract (seams item 1).
SHAPING_EXEMPT = {ROOT / "services" / "directory" / "resolution.py"}
ROLE_NAMES = frozenset(role.value for role in Role)
SQL_BUILDERS = frozenset({"select", "insert", "update", "delete", "text", "func"})
SESSION_CALLS = frozenset(
    {"execute", "scalar", "scalars", "get", "add", "add_all", "delete", "flush", "merge"}
)
ROLE_CALLS = frozenset({"require_roles", "has_any_role", "has_role"})


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"


def route_modules(service: str) -> list[Path]:
    folder = ROOT / "services" / service
    return sorted([folder / "api.py", *folder.glob("*_api.py")])


def all_modules() -> list[Path]:
    return sorted([*(ROOT / "services").rglob("*.py"), *(ROOT / "shared").rglob("*.py")])


def _imports_from(tree: ast.Module) -> Iterator[tuple[ast.ImportFrom, str, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                yield node, node.module, alias.name


def _imported_modules(tree: ast.Module) -> Iterator[tuple[ast.AST, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node, node.module
            for alias in node.names:
                yield node, f"{node.module}.{alias.name}"


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _session_calls(tree: ast.Module) -> Iterator[ast.Call]:
    """Calls like `session.execute(...)` or `(await ...).scalars(...)` on a session object."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = node.func.value
        named = isinstance(owner, ast.Name) and "session" in owner.id
        if named and node.func.attr in SESSION_CALLS:
            yield node


def _role_literals(node: ast.AST) -> Iterator[ast.Constant]:
    for inner in ast.walk(node):
        if isinstance(inner, ast.Constant) and inner.value in ROLE_NAMES:
            yield inner


class TestRoutesCallTheServiceLayerOnly:
    @pytest.mark.parametrize("service", SERVICES)
    def test_no_route_module_builds_sql(self, service: str) -> None:
        offenders = [
            f"{_where(path, node)} imports {name} from {module}"
            for path in route_modules(service)
            for node, module, name in _imports_from(_tree(path))
            if module.startswith("sqlalchemy") and name in SQL_BUILDERS
        ]
        assert offenders == []

    @pytest.mark.parametrize("service", SERVICES)
    def test_no_route_module_runs_a_query_on_a_session(self, service: str) -> None:
        offenders = [
            f"{_where(path, call)} calls session.{_called_name(call)}"
            for path in route_modules(service)
            for call in _session_calls(_tree(path))
        ]
        assert offenders == []

    @pytest.mark.parametrize("service", SERVICES)
    def test_no_route_module_reaches_past_the_service_into_the_repository(
        self, service: str
    ) -> None:
        below = {f"services.{service}.repository", f"services.{service}.models"}
        offenders = [
            f"{_where(path, node)} imports {module}"
            for path in route_modules(service)
            for node, module in _imported_modules(_tree(path))
            if module in below
        ]
        assert offenders == []


class TestRepositoriesKnowNothingOfHttp:
    # The workspace keeps no data: it has no repository, its data comes through the public API.
    @pytest.mark.parametrize("service", [entry.name for entry in WITH_MIGRATIONS])
    def test_a_repository_imports_no_errors_and_no_web_framework(self, service: str) -> None:
        path = ROOT / "services" / service / "repository.py"
        refused = ("fastapi", "starlette", "shared.errors", f"services.{service}.errors")
        offenders = [
            f"{_where(path, node)} imports {module}"
            for node, module in _imported_modules(_tree(path))
            if any(module == name or module.startswith(name + ".") for name in refused)
        ]
        assert offenders == []


class TestRoleChecksNameTheRoleEnum:
    def test_role_checks_never_take_plain_strings(self) -> None:
        offenders = [
            f"{_where(path, literal)} passes '{literal.value}' to {_called_name(node)}"
            for path in all_modules()
            for node in ast.walk(_tree(path))
            if isinstance(node, ast.Call) and _called_name(node) in ROLE_CALLS
            for argument in node.args
            for literal in _role_literals(argument)
        ]
        assert offenders == []

    @pytest.mark.parametrize("service", SERVICES)
    def test_role_dependencies_are_built_only_in_dependencies_py(self, service: str) -> None:
        offenders = [
            f"{_where(path, node)} calls require_roles"
            for path in sorted((ROOT / "services" / service).rglob("*.py"))
            if path.name != "dependencies.py"
            for node in ast.walk(_tree(path))
            if isinstance(node, ast.Call) and _called_name(node) == "require_roles"
        ]
        assert offenders == []

    @pytest.mark.parametrize("service", SERVICES)
    def test_route_and_service_modules_spell_no_role_as_a_string(self, service: str) -> None:
        folder = ROOT / "services" / service
        paths = [*route_modules(service), folder / "service.py"]
        offenders = [
            f"{_where(path, literal)} spells the role '{literal.value}'"
            for path in paths
            for literal in _role_literals_outside_tags(_tree(path))
        ]
        assert offenders == []


def _role_literals_outside_tags(tree: ast.Module) -> Iterator[ast.Constant]:
    """Role names as string constants, except OpenAPI tags (`tags=["admin"]`) and field names."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "tags":
            skipped.update(id(inner) for inner in ast.walk(node.value))
        # Dict keys and subscripts (`resolved["service"]`) name fields, not roles.
        if isinstance(node, ast.Dict):
            skipped.update(id(key) for key in node.keys if key is not None)
        if isinstance(node, ast.Subscript):
            skipped.add(id(node.slice))
    for literal in _role_literals(tree):
        if id(literal) not in skipped:
            yield literal


class TestRowsAreShapedInOnePlace:
    @pytest.mark.parametrize("service", SHAPED_SERVICES)
    def test_only_shaping_py_turns_rows_into_response_models(self, service: str) -> None:
        folder = ROOT / "services" / service
        paths = [*route_modules(service), folder / "service.py"]
        offenders = [
            f"{_where(path, node)} shapes a row with from_attributes"
            for path in paths
            if path not in SHAPING_EXEMPT
            for node in ast.walk(_tree(path))
            if isinstance(node, ast.keyword) and node.arg == "from_attributes"
        ]
        assert (folder / "shaping.py").exists()
        assert offenders == []
