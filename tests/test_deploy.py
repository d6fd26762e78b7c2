"""The container files agree with the code: no Docker engine needed to catch drift."""

from __future__ import annotations

import http.server
import json
import os
import re
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from services.registry import DEFAULT_PORTS, SERVICE_NAMES, WITH_MIGRATIONS, settings_class
from services.stack import free_port, wiring_env
from shared.settings import ServiceSettings

SERVICES_WITH_MIGRATIONS = tuple(entry.name for entry in WITH_MIGRATIONS)
# Addresses browsers use (the public ones), not service-to-service wiring.
PUBLIC_ADDRESSES = {"REFEX_TOKEN_ISSUER", "REFEX_WEB_PUBLIC_URL", "REFEX_GATEWAY_WEB_REDIRECT_URIS"}

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text()
ENV_EXAMPLE = ROOT / "deploy" / "compose.env.example"
INTERPOLATION = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def service(name: str) -> dict[str, Any]:
    return dict(COMPOSE["services"][name])


def environment(name: str) -> dict[str, str]:
    env = service(name).get("environment", {})
    assert isinstance(env, dict), f"{name}: write environment as a mapping"
    return {key: str(value) for key, value in env.items()}


def settings_fields(cls: type[ServiceSettings]) -> dict[str, str]:
    """Map every environment variable of `cls` to its field name."""
    return {cls.env_name(field): field for field in cls.model_fields}


def example_values() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def interpolate(value: str, given: dict[str, str]) -> str:
    """Substitute ${VAR}, ${VAR:-default} and ${VAR:?error} as Compose does."""

    def substitute(match: re.Match[str]) -> str:
        name, operator, argument = match.groups()
        if given.get(name):
            return given[name]
        if operator and operator.endswith("?"):
            raise AssertionError(f"{name} is required but empty")
        return argument if operator else ""

    return INTERPOLATION.sub(substitute, value)


def filled_example() -> dict[str, str]:
    """The example env file with every empty secret given a real random value."""
    return {key: value or secrets.token_urlsafe(32) for key, value in example_values().items()}


def required_variables() -> set[str]:
    """Variables Compose refuses to run without (${VAR:?message})."""
    text = (ROOT / "docker-compose.yml").read_text()
    return {m.group(1) for m in INTERPOLATION.finditer(text) if m.group(2) == ":?"}


class TestComposeServices:
    def test_it_runs_postgres_redis_a_migration_job_and_every_service(self) -> None:
        assert set(COMPOSE["services"]) == {"postgres", "redis", "migrate", *SERVICE_NAMES}
        assert service("postgres")["image"].startswith("postgres:16")
        assert service("redis")["image"].startswith("redis:")

    def test_only_the_gateway_and_the_workspace_are_published(self) -> None:
        published = {name for name, spec in COMPOSE["services"].items() if spec.get("ports")}
        assert published == {"gateway", "web"}
        for name in published:
            (mapping,) = service(name)["ports"]
            assert interpolate(mapping, example_values()).endswith(f":{DEFAULT_PORTS[name]}")

    @pytest.mark.parametrize("name", SERVICE_NAMES)
    def test_each_service_runs_refex_serve_from_the_one_image(self, name: str) -> None:
        spec = service(name)
        assert spec["command"] == ["serve", name]
        assert spec["build"]["dockerfile"] == "deploy/Dockerfile"
        assert spec["image"] == service("migrate")["image"]

    def test_the_migration_job_runs_once_and_waits_for_postgres(self) -> None:
        job = service("migrate")
        assert job["command"] == ["migrate"]
        assert job["restart"] == "no"
        assert job["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert job["healthcheck"] == {"disable": True}

    @pytest.mark.parametrize("name", SERVICES_WITH_MIGRATIONS)
    def test_services_start_only_after_migrations_succeeded(self, name: str) -> None:
        depends = service(name)["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["postgres"]["condition"] == "service_healthy"

    def test_the_workspace_starts_once_the_gateway_is_healthy(self) -> None:
        assert service("web")["depends_on"] == {"gateway": {"condition": "service_healthy"}}

    @pytest.mark.parametrize("name", SERVICE_NAMES)
    def test_health_checks_ask_readyz_on_the_service_port(self, name: str) -> None:
        check = service(name)["healthcheck"]
        assert check["test"] == [
            "CMD",
            "python",
            "/app/deploy/healthcheck.py",
            str(DEFAULT_PORTS[name]),
        ]
        assert environment(name)[f"REFEX_{name.upper()}_PORT"] == str(DEFAULT_PORTS[name])
        assert environment(name)[f"REFEX_{name.upper()}_HOST"] == "0.0.0.0"


class TestComposeEnvironment:
    @pytest.mark.parametrize("name", SERVICE_NAMES)
    def test_every_refex_variable_is_a_setting_of_that_service(self, name: str) -> None:
        known = settings_fields(settings_class(name))
        unknown = [key for key in environment(name) if key not in known]
        assert unknown == [], f"{name} does not read {unknown}"

    def test_the_migration_job_sets_only_environment_and_database_urls(self) -> None:
        expected = {"REFEX_ENVIRONMENT"} | {
            settings_class(name).env_name("database_url") for name in SERVICES_WITH_MIGRATIONS
        }
        assert set(environment("migrate")) == expected

    @pytest.mark.parametrize("name", [*SERVICE_NAMES, "migrate"])
    def test_everything_runs_in_production_mode(self, name: str) -> None:
        assert environment(name)["REFEX_ENVIRONMENT"] == "production"

    @pytest.mark.parametrize("name", SERVICE_NAMES)
    def test_services_find_each_other_by_compose_hostname(self, name: str) -> None:
        wiring = wiring_env(DEFAULT_PORTS)
        env = environment(name)
        known = settings_fields(settings_class(name))
        for key, local_url in wiring.items():
            if key not in known or key.endswith("_PORT") or key in PUBLIC_ADDRESSES:
                continue
            target = next(n for n, port in DEFAULT_PORTS.items() if f":{port}" in local_url)
            host = "127.0.0.1" if target == name else target
            assert env.get(key) == local_url.replace("127.0.0.1", host), key

    def test_all_services_agree_on_the_token_issuer(self) -> None:
        issuers = {environment(name)["REFEX_TOKEN_ISSUER"] for name in SERVICE_NAMES}
        assert len(issuers) == 1

    @pytest.mark.parametrize("name", [*SERVICE_NAMES, "migrate"])
    def test_secrets_come_from_the_env_file_not_the_compose_file(self, name: str) -> None:
        cls = settings_class("gateway" if name == "migrate" else name)
        fields = settings_fields(cls)
        for key, value in environment(name).items():
            secret = key.endswith("_DATABASE_URL") or (
                key in fields and _is_secret(cls.model_fields[fields[key]].annotation)
            )
            if secret:
                used = {match.group(1) for match in INTERPOLATION.finditer(value)}
                assert used & required_variables(), f"{name}: {key} must come from the env file"

    @pytest.mark.parametrize("name", SERVICE_NAMES)
    def test_the_compose_environment_is_a_valid_production_configuration(
        self, name: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for key in [key for key in os.environ if key.startswith("REFEX_")]:
            monkeypatch.delenv(key)
        given = filled_example()
        for key, value in environment(name).items():
            monkeypatch.setenv(key, interpolate(value, given))
        settings = settings_class(name)()
        assert settings.environment == "production"
        if name in SERVICES_WITH_MIGRATIONS:
            assert settings.database_backend == "postgresql"
        assert settings.port == DEFAULT_PORTS[name]

    @pytest.mark.parametrize("name", SERVICE_NAMES)
    def test_files_named_in_the_environment_are_mounted_secrets(self, name: str) -> None:
        mounted = {
            f"/run/secrets/{entry['target']}": entry["source"]
            for entry in service(name).get("secrets", [])
        }
        for key, value in environment(name).items():
            if value.startswith("/run/secrets/"):
                assert value in mounted, f"{name}: {key} names a file nothing mounts"
        assert set(mounted.values()) <= set(COMPOSE.get("secrets", {}))

    def test_the_referral_service_gets_its_webhook_signing_key_in_production(self) -> None:
        # In production the referral service refuses to generate this key itself.
        path = environment("referral")["REFEX_REFERRAL_WEBHOOK_SIGNING_KEY_FILE"]
        (entry,) = service("referral")["secrets"]
        assert path == f"/run/secrets/{entry['target']}"
        assert "REFERRAL_WEBHOOK_SIGNING_KEY_FILE" in COMPOSE["secrets"][entry["source"]]["file"]

    def test_the_env_file_example_lists_exactly_what_compose_reads(self) -> None:
        text = (ROOT / "docker-compose.yml").read_text()
        read = {match.group(1) for match in INTERPOLATION.finditer(text)}
        assert read == set(example_values())

    def test_the_env_file_example_holds_no_secret_values(self) -> None:
        required = required_variables()
        assert required, "secrets must be required (${VAR:?message})"
        assert {key: example_values()[key] for key in required} == dict.fromkeys(required, "")

    def test_postgres_creates_one_database_per_service(self) -> None:
        script = ROOT / "deploy" / "postgres-init.sh"
        mounts = service("postgres")["volumes"]
        init = "./deploy/postgres-init.sh:/docker-entrypoint-initdb.d/"
        assert any(mount.startswith(init) for mount in mounts)
        assert os.access(script, os.X_OK)
        loop = re.search(r"for service in ([a-z ]+); do", script.read_text())
        assert loop is not None
        assert sorted(loop.group(1).split()) == sorted(SERVICES_WITH_MIGRATIONS)
        for name in SERVICES_WITH_MIGRATIONS:
            url = environment("migrate")[f"REFEX_{name.upper()}_DATABASE_URL"]
            assert url.startswith(f"postgresql+asyncpg://{name}:")
            assert url.endswith(f"@postgres:5432/{name}")


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ())


class TestDockerfile:
    def instructions(self) -> list[tuple[str, str]]:
        joined = DOCKERFILE.replace("\\\n", " ")
        lines = [line.strip() for line in joined.splitlines()]
        return [
            (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
            for line in lines
            if line and not line.startswith("#")
        ]

    def test_it_builds_on_python_311_slim_with_uv_from_pypi(self) -> None:
        assert "ARG PYTHON_IMAGE=python:3.11-slim" in DOCKERFILE
        runs = [args for op, args in self.instructions() if op == "RUN"]
        assert any('pip install "uv==' in run for run in runs)
        assert any("uv sync --frozen --no-dev" in run for run in runs)

    def test_it_runs_as_a_non_root_user(self) -> None:
        users = [args for op, args in self.instructions() if op == "USER"]
        assert users, "the image must switch to a non-root user"
        assert users[-1].split(":")[0] not in {"root", "0"}

    def test_refex_is_the_entrypoint_and_the_gateway_the_default(self) -> None:
        ops = dict(self.instructions())
        assert json.loads(ops["ENTRYPOINT"]) == ["refex"]
        assert json.loads(ops["CMD"]) == ["serve", "gateway"]
        assert "/app/deploy/healthcheck.py" in ops["HEALTHCHECK"]

    def test_every_copied_path_exists_and_is_not_docker_ignored(self) -> None:
        ignore = (ROOT / ".dockerignore").read_text().splitlines()
        for op, args in self.instructions():
            if op != "COPY" or args.startswith("--from"):
                continue
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), source
                assert f"!{source.rstrip('/')}" in {line.rstrip("/") for line in ignore}, source


@pytest.fixture
def readyz_server() -> Iterator[int]:
    """A stand-in service whose /readyz answers 200."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/readyz" else 404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


class TestHealthCheck:
    def run(self, *args: str) -> int:
        script = ROOT / "deploy" / "healthcheck.py"
        return subprocess.run([sys.executable, str(script), *args], timeout=10).returncode

    def test_a_ready_service_is_healthy(self, readyz_server: int) -> None:
        assert self.run(str(readyz_server)) == 0

    def test_nothing_listening_is_unhealthy(self) -> None:
        assert self.run(str(free_port())) == 1

    def test_the_port_follows_the_container_command_and_environment(self) -> None:
        sys.path.insert(0, str(ROOT / "deploy"))
        try:
            from healthcheck import port_of  # type: ignore[import-not-found]
        finally:
            sys.path.remove(str(ROOT / "deploy"))
        assert port_of(["refex", "serve", "directory"], {}) == 8001
        assert port_of(["refex", "serve", "consent"], {"REFEX_CONSENT_PORT": "9002"}) == 9002
        assert port_of(["refex", "serve", "referral", "--port", "9100"], {}) == 9100
        assert port_of(["/app/.venv/bin/python", "/app/.venv/bin/refex"], {}) == 8000
