"""docs/configuration.md and docs/problems.md are generated from the code and stay in sync."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field, SecretStr
from typer.testing import CliRunner

from services.cli import app
from services.config_docs import CONFIGURATION_MD, current_page, render
from services.problem_docs import (
    MALFORMED_JSON,
    PROBLEMS_MD,
    current_problems_page,
    import_everything,
)
from services.registry import SERVICE_NAMES, settings_class
from shared.errors import ServiceError, install_problem_handlers, problem_type
from shared.settings import ServiceSettings


def test_the_committed_page_matches_the_settings_classes() -> None:
    assert CONFIGURATION_MD.read_text() == current_page(), (
        "docs/configuration.md is out of date: run `refex config-docs` and commit the result"
    )


def test_the_committed_problem_types_match_the_error_classes() -> None:
    assert PROBLEMS_MD.read_text() == current_problems_page(), (
        "docs/problems.md is out of date: run `refex config-docs` and commit the result"
    )


def all_error_classes() -> set[type[ServiceError]]:
    import_everything()
    found: set[type[ServiceError]] = set()
    pending = [ServiceError]
    while pending:
        cls = pending.pop()
        found.add(cls)
        pending.extend(cls.__subclasses__())
    return found


def test_every_problem_type_any_service_can_answer_is_documented() -> None:
    page = current_problems_page()
    missing = {
        cls.slug for cls in all_error_classes() if f"| `{cls.slug}` | {cls.status} |" not in page
    }
    assert missing == set()


class Named(BaseModel):
    name: str


async def test_the_malformed_json_row_matches_what_the_handler_answers() -> None:
    probe = FastAPI()
    install_problem_handlers(probe)

    @probe.post("/echo")
    async def echo(body: Named) -> Named:
        return body

    transport = httpx.ASGITransport(probe)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        response = await client.post(
            "/echo", content=b"{not json", headers={"content-type": "application/json"}
        )
    slug, status, title, _, todo = MALFORMED_JSON
    problem = response.json()
    assert (problem["type"], problem["status"], problem["title"]) == (
        problem_type(slug),
        status,
        title,
    )
    assert todo in problem["detail"]


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_every_variable_of_every_service_is_documented(service: str) -> None:
    cls = settings_class(service)
    page = current_page()
    missing = [cls.env_name(f) for f in cls.model_fields if f"`{cls.env_name(f)}`" not in page]
    assert missing == []


def test_the_shell_environment_does_not_change_the_defaults_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = current_page()
    monkeypatch.setenv("REFEX_DIRECTORY_PORT", "9999")
    monkeypatch.setenv("REFEX_ENVIRONMENT", "production")
    assert current_page() == before
    assert "9999" not in before


def test_secret_defaults_are_never_printed() -> None:
    class Leaky(ServiceSettings):
        token: SecretStr = Field(SecretStr("dev-only-do-not-print"), description="A secret.")

    classes = {name: settings_class(name) for name in SERVICE_NAMES} | {"gateway": Leaky}
    page = render(classes)
    assert "do-not-print" not in page
    assert "| `REFEX_TOKEN` | secret | development placeholder | A secret. |" in page


class TestCommand:
    def test_check_fails_with_the_fix_when_a_page_is_stale(self, tmp_path: Path) -> None:
        (tmp_path / "configuration.md").write_text("# Configuration\n")
        result = CliRunner().invoke(app, ["config-docs", "--check", "--docs-dir", str(tmp_path)])
        assert result.exit_code == 1
        assert "configuration.md is out of date: run `refex config-docs`" in result.output
        assert "problems.md is out of date" in result.output

    def test_it_writes_the_pages_and_check_then_passes(self, tmp_path: Path) -> None:
        docs = tmp_path / "docs"
        written = CliRunner().invoke(app, ["config-docs", "--docs-dir", str(docs)])
        assert written.exit_code == 0
        assert (docs / "configuration.md").read_text() == current_page()
        assert (docs / "problems.md").read_text() == current_problems_page()
        checked = CliRunner().invoke(app, ["config-docs", "--check", "--docs-dir", str(docs)])
        assert checked.exit_code == 0
