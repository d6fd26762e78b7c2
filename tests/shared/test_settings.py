"""Settings refuse what cannot work and name the variable to fix."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from services.consent.settings import ConsentSettings
from services.directory.settings import DirectorySettings
from shared.settings import describe_settings_error


class TestDatabaseUrl:
    def test_default_is_a_sqlite_file_under_var(self) -> None:
        settings = DirectorySettings(database_url="")
        assert settings.database_url == "sqlite+aiosqlite:///var/directory.db"
        assert settings.database_backend == "sqlite"

    def test_plain_postgresql_urls_get_the_async_driver(self) -> None:
        settings = ConsentSettings(database_url="postgresql://u@db:5432/consent")
        assert settings.database_url == "postgresql+asyncpg://u@db:5432/consent"

    def test_unsupported_database_names_the_variable_without_echoing_the_url(self) -> None:
        with pytest.raises(ValidationError) as caught:
            DirectorySettings(database_url="mysql://root:hunter2@db/x")
        line = describe_settings_error(caught.value, DirectorySettings)
        assert "REFEX_DIRECTORY_DATABASE_URL" in line
        assert "hunter2" not in line
        assert "\n" not in line

    def test_environment_variable_is_read_with_the_service_prefix(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("REFEX_CONSENT_DATABASE_URL", "sqlite+aiosqlite:///elsewhere.db")
        assert ConsentSettings().database_url == "sqlite+aiosqlite:///elsewhere.db"


class TestPlaceholderSecrets:
    @pytest.mark.parametrize("secret", ["", "changeme", "dev-only-client-secret"])
    def test_placeholders_are_refused_outside_development(self, secret: str) -> None:
        with pytest.raises(ValidationError) as caught:
            ConsentSettings(environment="production", client_secret=SecretStr(secret))
        assert "REFEX_CONSENT_CLIENT_SECRET" in describe_settings_error(
            caught.value, ConsentSettings
        )

    def test_placeholders_are_accepted_in_development(self) -> None:
        settings = ConsentSettings(
            environment="development", client_secret=SecretStr("dev-only-client-secret")
        )
        assert settings.client_secret is not None

    def test_real_secrets_are_accepted_in_production(self) -> None:
        settings = DirectorySettings(
            environment="production", client_secret=SecretStr("k3Jq9-very-long-random")
        )
        assert settings.environment == "production"
