"""docs/configuration.md lists every setting of every service and stays in sync with the code."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field, SecretStr
from typer.testing import CliRunner

from services.cli import app, settings_class
from services.config_docs import CONFIGURATION_MD, current_page, render
from services.stack import SERVICE_NAMES
from shared.settings import ServiceSettings


def test_the_committed_page_matches_the_settings_classes() -> None:
    assert CONFIGURATION_MD.read_text() == current_page(), (
        "docs/configuration.md is out of date: run `refex config-docs` and commit the result"
    )


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
    def test_check_fails_with_the_fix_when_the_page_is_stale(self, tmp_path: Path) -> None:
        stale = tmp_path / "configuration.md"
        stale.write_text("# Configuration\n")
        result = CliRunner().invoke(app, ["config-docs", "--check", "--output", str(stale)])
        assert result.exit_code == 1
        assert "run `refex config-docs`" in result.output

    def test_it_writes_the_page_and_check_then_passes(self, tmp_path: Path) -> None:
        page = tmp_path / "docs" / "configuration.md"
        written = CliRunner().invoke(app, ["config-docs", "--output", str(page)])
        assert written.exit_code == 0
        assert page.read_text() == current_page()
        checked = CliRunner().invoke(app, ["config-docs", "--check", "--output", str(page)])
        assert checked.exit_code == 0
