"""Services never import each other nor the command line; the common library imports no service."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from services.registry import SERVICE_NAMES

ROOT = Path(__file__).resolve().parent.parent
# Composition points that wire the services together as processes: each imports services, so a
# service importing one of them closes an import circle.
COMPOSERS = ("cli", "cli_errors", "stack", "demo", "config_docs", "problem_docs")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            if node.module == "services":  # `from services import cli`
                names.update(f"services.{alias.name}" for alias in node.names)
    return names


def python_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def offenders(folder: Path, forbidden: set[str]) -> list[str]:
    """Each `path imports module` under `folder` where the module is (inside) a forbidden one."""
    return [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in python_files(folder)
        for module in imported_modules(path)
        if any(module == name or module.startswith(name + ".") for name in forbidden)
    ]


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_a_service_imports_no_other_service(service: str) -> None:
    others = {f"services.{name}" for name in SERVICE_NAMES if name != service}
    assert offenders(ROOT / "services" / service, others) == []


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_a_service_imports_no_command_line_module(service: str) -> None:
    composers = {f"services.{name}" for name in COMPOSERS}
    assert offenders(ROOT / "services" / service, composers) == []


def test_shared_imports_no_service() -> None:
    assert offenders(ROOT / "shared", {"services"}) == []
