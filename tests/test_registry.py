"""The service registry lists every service, completely, and nothing else lists them."""

from __future__ import annotations

import ast
import asyncio
import configparser
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from services.config_docs import current_page
from services.problem_docs import current_problems_page
from services.registry import (
    DEFAULT_PORTS,
    SERVICE_NAMES,
    SERVICES,
    WITH_DEMO_DATA,
    WITH_MIGRATIONS,
    InvalidSettings,
    Service,
    get_service,
    load_settings,
)
from shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parent.parent
SERVICE_DIRS = sorted(p.parent.name for p in (ROOT / "services").glob("*/app.py"))
# Where a list of the services could hide; the registry itself is the one allowed.
SCANNED = ("services", "shared", "tests", "proof", "bench", "deploy")
REGISTRY = ROOT / "services" / "registry.py"


def entry_ids(entry: Service) -> str:
    return entry.name


class TestEveryServiceIsRegistered:
    def test_every_service_folder_with_an_app_has_an_entry(self) -> None:
        assert sorted(SERVICE_NAMES) == SERVICE_DIRS

    def test_names_and_ports_are_unique(self) -> None:
        assert len(set(SERVICE_NAMES)) == len(SERVICES)
        assert len(set(DEFAULT_PORTS.values())) == len(SERVICES)

    def test_the_gateway_keeps_the_public_port(self) -> None:
        assert DEFAULT_PORTS["gateway"] == 8000

    def test_an_unknown_name_is_refused(self) -> None:
        with pytest.raises(KeyError):
            get_service("billing")


@pytest.mark.parametrize("entry", SERVICES, ids=entry_ids)
class TestEachEntry:
    def test_its_settings_class_reads_its_own_prefix_and_port(self, entry: Service) -> None:
        cls = entry.settings_class()
        assert issubclass(cls, ServiceSettings)
        assert cls.model_config.get("env_prefix") == f"REFEX_{entry.name.upper()}_"
        assert cls.service_name == entry.name
        assert cls.default_port == entry.default_port

    def test_its_factory_builds_its_app(self, entry: Service, tmp_path: Path) -> None:
        settings = entry.settings_class()(
            environment="development", database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db"
        )
        app = entry.create_app(settings)
        assert isinstance(app, FastAPI)
        assert "/readyz" in {getattr(route, "path", "") for route in app.routes}
        assert entry.app_module == f"services.{entry.name}.app"

    def test_its_migration_history_is_an_alembic_section_of_its_own(self, entry: Service) -> None:
        sections = configparser.ConfigParser()
        sections.read(ROOT / "alembic.ini")
        has_folder = (ROOT / "services" / entry.name / "migrations" / "versions").is_dir()
        assert (entry.migrations is not None) == has_folder
        if entry.migrations is not None:
            location = sections[entry.migrations]["script_location"]
            assert location == f"services/{entry.name}/migrations"

    def test_its_demo_seeder_is_an_async_function(self, entry: Service) -> None:
        if entry in WITH_DEMO_DATA:
            assert asyncio.iscoroutinefunction(entry.seeder())
        else:
            with pytest.raises(LookupError):
                entry.seeder()


def test_every_history_in_alembic_ini_belongs_to_a_service() -> None:
    sections = configparser.ConfigParser()
    sections.read(ROOT / "alembic.ini")
    histories = {
        s for s in sections.sections() if s != "alembic" and "script_location" in sections[s]
    }
    assert histories == {entry.migrations for entry in WITH_MIGRATIONS}


def test_importing_the_registry_and_the_stack_imports_no_service_and_no_library() -> None:
    probe = (
        "import sys, services.stack, services.registry\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('services', 'shared', 'fastapi', 'pydantic', 'sqlalchemy', 'typer'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == ["services", "services.registry", "services.stack"]


class TestLoadSettings:
    def test_it_reads_the_environment_of_that_service(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        url = f"sqlite+aiosqlite:///{tmp_path}/consent.db"
        monkeypatch.setenv("REFEX_CONSENT_DATABASE_URL", url)
        assert load_settings("consent").database_url == url

    def test_a_bad_value_names_the_variable_and_never_echoes_it(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("REFEX_CONSENT_DATABASE_URL", "mysql://root:hunter2@db/x")
        with pytest.raises(InvalidSettings) as caught:
            load_settings("consent")
        assert str(caught.value).startswith("REFEX_CONSENT_DATABASE_URL: unsupported database")
        assert "hunter2" not in str(caught.value)
        assert caught.value.service == "consent"

    def test_every_bad_variable_is_named_on_one_line(self) -> None:
        with pytest.raises(InvalidSettings) as caught:
            load_settings(
                "referral", environment="production", subject_hash_key=SecretStr("changeme")
            )
        assert "REFEX_REFERRAL_SUBJECT_HASH_KEY" in str(caught.value)
        assert "\n" not in str(caught.value)


class TestDocsFollowTheRegistry:
    def test_configuration_sections_come_in_registry_order(self) -> None:
        page = current_page()
        positions = [page.index(f"\n## {name.capitalize()} (`REFEX_") for name in SERVICE_NAMES]
        assert positions == sorted(positions)

    def test_problem_sections_come_in_registry_order(self) -> None:
        page = current_problems_page()
        positions = [page.index(f"\n## {name.capitalize()}\n") for name in SERVICE_NAMES]
        assert positions == sorted(positions)


def _string_constants(nodes: list[ast.expr | None]) -> set[str]:
    return {n.value for n in nodes if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def _class_members(node: ast.ClassDef) -> set[str]:
    members: set[str] = set()
    for statement in node.body:
        if isinstance(statement, ast.Assign | ast.AnnAssign):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            members.update(t.id for t in targets if isinstance(t, ast.Name))
    return members


def lists_of_services(path: Path) -> list[int]:
    """Line numbers of literals (tuple, list, set, dict keys, class members) naming all services."""
    names = set(SERVICE_NAMES)
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            members = _string_constants(list(node.elts))
        elif isinstance(node, ast.Dict):
            members = _string_constants(list(node.keys))
        elif isinstance(node, ast.ClassDef):
            members = _class_members(node)
        else:
            continue
        if names <= members:
            found.append(node.lineno)
    return found


def test_no_module_but_the_registry_lists_the_services() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for folder in SCANNED
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path != REGISTRY and ".venv" not in path.parts
        for line in lists_of_services(path)
    ]
    assert offenders == [], "derive these from services/registry.py instead"


@pytest.mark.parametrize(
    "source",
    [
        'NAMES = ("gateway", "directory", "consent", "referral", "web")',
        'PORTS = {"gateway": 1, "directory": 2, "consent": 3, "referral": 4, "web": 5}',
        "class Name:\n    gateway = 1\n    directory = 2\n    consent = 3\n    referral = 4\n"
        "    web = 5",
    ],
)
def test_the_guard_sees_a_new_list(source: str, tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(source + "\n")
    assert lists_of_services(sample) == [1]
