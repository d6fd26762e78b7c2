"""Typed settings shared by every service; each service adds its own under REFEX_<SERVICE>_."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.i18n import Message

Environment = Literal["development", "test", "production"]

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "password", "placeholder"})
DEV_SECRET_PREFIX = "dev-only-"  # noqa: S105 (a marker, not a secret)
VAR_DIR = Path("var")
SUPPORTED_DATABASE_SCHEMES = ("sqlite+aiosqlite://", "postgresql+asyncpg://")


class ServiceSettings(BaseSettings):
    """Settings every service has; subclasses set `service_name` and their env prefix."""

    model_config = SettingsConfigDict(
        env_prefix="REFEX_", extra="ignore", validate_by_name=True, validate_default=True
    )
    service_name: ClassVar[str] = "service"
    default_port: ClassVar[int] = 8000

    environment: Environment = Field(
        "development",
        validation_alias="REFEX_ENVIRONMENT",
        description="`development` allows placeholder secrets; `test` and `production` do not.",
    )
    database_url: str = Field(
        "",
        description="SQLAlchemy URL of this service's own database; empty: SQLite under var/.",
    )
    host: str = Field("127.0.0.1", description="Address to listen on (0.0.0.0 in containers).")
    port: int = Field(0, description="Port to listen on; 0 means the service's default port.")
    max_body_bytes: int = Field(
        1024 * 1024, ge=1024, description="Largest request body accepted (413 beyond)."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Lowest level of the JSON log lines written to stderr."
    )
    jwks_url: str = Field(
        "http://127.0.0.1:8000/.well-known/jwks.json",
        validation_alias="REFEX_JWKS_URL",
        description="Where the gateway publishes the public keys that sign access tokens.",
    )
    jwks_file: Path | None = Field(
        None,
        validation_alias="REFEX_JWKS_FILE",
        description="Read the token-signing public keys from this file instead of REFEX_JWKS_URL.",
    )
    jwks_cache_ttl_s: float = Field(
        60.0,
        gt=0,
        le=60,
        validation_alias="REFEX_JWKS_CACHE_TTL_S",
        description="Longest time fetched token-signing keys are trusted before fetching them "
        "again, so a key the gateway withdrew stops verifying within it.",
    )
    token_issuer: str = Field(
        "http://127.0.0.1:8000",
        validation_alias="REFEX_TOKEN_ISSUER",
        description="Expected `iss` of access tokens: the gateway's public base URL.",
    )
    token_audience: str = Field(
        "refex",
        validation_alias="REFEX_TOKEN_AUDIENCE",
        description="Expected `aud` of access tokens.",
    )
    redis_url: str | None = Field(
        None,
        validation_alias="REFEX_REDIS_URL",
        description="Redis for rate limits and caches; unset: kept in process memory.",
    )
    token_url: str = Field(
        "http://127.0.0.1:8000/oauth/token",
        validation_alias="REFEX_TOKEN_URL",
        description="The gateway's OAuth 2.0 token endpoint, for service-to-service calls.",
    )
    partner_urls_allow_private: bool = Field(
        False,
        description=(
            "Let partner URLs (webhooks) point to loopback and private addresses: for local "
            "development and the test suite only. Link-local, multicast and the services' own "
            "addresses stay refused."
        ),
    )
    client_id: str | None = Field(
        None, description="This service's own API client id, to call the other services."
    )
    client_secret: SecretStr | None = Field(
        None, description="Secret of this service's API client (see the client id)."
    )

    @classmethod
    def env_name(cls, field: str) -> str:
        """Return the environment variable that sets `field`."""
        alias = cls.model_fields[field].validation_alias
        if isinstance(alias, str):
            return alias
        return f"{cls.model_config.get('env_prefix', '')}{field}".upper()

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if not value:
            return f"sqlite+aiosqlite:///{VAR_DIR / cls.service_name}.db"
        for legacy in ("postgresql://", "postgres://"):
            if value.startswith(legacy):
                return "postgresql+asyncpg://" + value.removeprefix(legacy)
        if not value.startswith(SUPPORTED_DATABASE_SCHEMES):
            scheme = value.split(":", 1)[0]
            raise ValueError(
                Message(
                    "unsupported database '{scheme}': use sqlite+aiosqlite:///path.db "
                    "or postgresql+asyncpg://user@host:port/database",
                    scheme=scheme,
                )
            )
        return value

    @field_validator("port")
    @classmethod
    def _default_port(cls, value: int) -> int:
        return value or cls.default_port

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> ServiceSettings:
        if self.environment == "development":
            return self
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr) and _is_placeholder(value.get_secret_value()):
                raise ValueError(
                    Message(
                        "{variable} holds a placeholder secret; set a real secret when "
                        "REFEX_ENVIRONMENT={environment}",
                        variable=self.env_name(name),
                        environment=self.environment,
                    )
                )
        return self

    @property
    def database_backend(self) -> str:
        """Return `sqlite` or `postgresql`."""
        return "sqlite" if self.database_url.startswith("sqlite") else "postgresql"


def _is_placeholder(secret: str) -> bool:
    return secret.strip().lower() in PLACEHOLDER_SECRETS or secret.startswith(DEV_SECRET_PREFIX)


def describe_settings_error(error: ValidationError, settings_cls: type[ServiceSettings]) -> str:
    """Say in one line which variable is wrong and why, without echoing its value."""
    problems = settings_problems(error, settings_cls)
    return f"refex {settings_cls.service_name}: invalid settings: {problems}"


def settings_problems(error: ValidationError, settings_cls: type[ServiceSettings]) -> str:
    """Return `VARIABLE: what is wrong` for each error, joined by `; `, never echoing values."""
    parts = []
    for item in error.errors(include_input=False, include_url=False):
        field = str(item["loc"][0]) if item["loc"] else ""
        message = item["msg"].removeprefix("Value error, ")
        if field in settings_cls.model_fields:
            parts.append(f"{settings_cls.env_name(field)}: {message}")
        else:
            parts.append(message)
    return "; ".join(parts)
