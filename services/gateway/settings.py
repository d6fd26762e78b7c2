"""Settings of the gateway service (environment prefix REFEX_GATEWAY_)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import VAR_DIR, ServiceSettings

ProxyClientName = Literal["aiohttp", "httpx-aiohttp", "httpx"]
DEV_KEK_FILE = VAR_DIR / "gateway-kek.key"
DEV_SECRET_PEPPER = b"dev-only-refex-gateway-client-secret-pepper"
MIN_PEPPER_CHARS = 32
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
DEV_WEB_REDIRECT_URIS = "http://127.0.0.1:8005/auth/callback,http://localhost:8005/auth/callback"


class GatewaySettings(ServiceSettings):
    """Configuration of the gateway service."""

    model_config = SettingsConfigDict(env_prefix="REFEX_GATEWAY_")
    service_name: ClassVar[str] = "gateway"
    default_port: ClassVar[int] = 8000
    directory_url: str = "http://127.0.0.1:8001"
    consent_url: str = "http://127.0.0.1:8002"
    referral_url: str = "http://127.0.0.1:8003"

    key_encryption_key: SecretStr | None = Field(
        None, description="Base64url of 32 random bytes that encrypt the token-signing keys."
    )
    key_encryption_key_file: Path | None = None
    access_token_ttl_s: int = Field(300, ge=60, le=3600)
    assertion_max_lifetime_s: int = Field(300, ge=30, le=3600)
    signing_key_overlap_s: int = Field(
        600, ge=60, description="How long a rotated-out key stays published."
    )
    key_reload_interval_s: float = Field(10.0, gt=0)

    proxy_client: ProxyClientName = "aiohttp"
    upstream_timeout_s: float = Field(30.0, gt=0)
    upstream_connect_timeout_s: float = Field(2.0, gt=0)
    proxy_max_body_bytes: int = Field(1024 * 1024, ge=1024)
    route_body_limits: dict[str, int] = Field(
        default_factory=dict,
        description='Body limit per first path segment, e.g. {"referrals": 4194304}.',
    )
    max_header_bytes: int = Field(16 * 1024, ge=4096)

    rate_limit_per_s: float = Field(50.0, gt=0)
    rate_limit_burst: int = Field(100, ge=1)
    trusted_proxy_count: int = Field(
        0,
        ge=0,
        le=10,
        description="Proxies in front of the gateway that append to X-Forwarded-For; the entry "
        "the outermost one added is the caller's address. 0: the direct peer is the caller.",
    )
    token_address_rate_limit_per_s: float = Field(
        5.0,
        gt=0,
        description="Token requests per second per source address, checked before any secret.",
    )
    token_address_rate_limit_burst: int = Field(60, ge=1)
    token_rate_limit_per_s: float = Field(
        5.0,
        gt=0,
        description="Tokens per second per client, counted once the client has authenticated.",
    )
    token_rate_limit_burst: int = Field(60, ge=1)
    rate_limit_memory_buckets: int = Field(
        10_000,
        ge=100,
        description="Most buckets each in-memory rate limiter keeps (least recently used go).",
    )
    client_secret_pepper: SecretStr | None = Field(
        None,
        description="Server key (at least 32 characters) of the HMAC-SHA-256 that stores new "
        "client secrets; unset: development uses a built-in one, elsewhere argon2id is used.",
    )
    openapi_retry_interval_s: float = Field(
        2.0, gt=0, description="Seconds between asks for a service API description still missing."
    )

    web_client_id: str = Field(
        "refex-web",
        description="Client id of the workspace, the public OAuth client people sign in through.",
    )
    web_redirect_uris: str = Field(
        DEV_WEB_REDIRECT_URIS,
        description="Comma-separated redirect URIs of the workspace (exact match) that "
        "authorization codes may be sent to.",
    )
    authorization_code_ttl_s: int = Field(
        60, ge=10, le=60, description="How long an authorization code may be exchanged."
    )
    refresh_session_ttl_s: int = Field(
        8 * 3600,
        ge=300,
        le=30 * 24 * 3600,
        description="How long a sign-in lasts: refresh tokens stop working this long after it.",
    )
    signin_max_failures: int = Field(
        5, ge=1, le=100, description="Failed sign-ins in a row that lock an account."
    )
    signin_lockout_s: int = Field(
        900, ge=1, description="How long a locked account refuses every sign-in."
    )
    signin_address_rate_limit_per_s: float = Field(
        0.5, gt=0, description="Sign-in attempts per second per source address."
    )
    signin_address_rate_limit_burst: int = Field(20, ge=1)
    signin_account_rate_limit_per_s: float = Field(
        0.1, gt=0, description="Sign-in attempts per second per account (e-mail address)."
    )
    signin_account_rate_limit_burst: int = Field(10, ge=1)

    @field_validator("client_secret_pepper")
    @classmethod
    def _pepper_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_PEPPER_CHARS:
            raise ValueError(f"the pepper must be at least {MIN_PEPPER_CHARS} random characters")
        return value

    @model_validator(mode="after")
    def _body_ceiling_covers_routes(self) -> GatewaySettings:
        # The shared middleware enforces max_body_bytes on everything, so it must admit the
        # largest per-route limit; the proxy then applies each route's own limit.
        largest = max([self.proxy_max_body_bytes, *self.route_body_limits.values()])
        self.max_body_bytes = max(self.max_body_bytes, largest)
        return self

    def secret_pepper(self) -> bytes | None:
        """Return the key of client-secret HMACs, or None when argon2id must be used."""
        if self.client_secret_pepper is not None:
            return self.client_secret_pepper.get_secret_value().encode("utf-8")
        return DEV_SECRET_PEPPER if self.environment == "development" else None

    @field_validator("web_redirect_uris")
    @classmethod
    def _redirect_uris_absolute(cls, value: str) -> str:
        for uri in (part.strip() for part in value.split(",") if part.strip()):
            parsed = urlsplit(uri)
            if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.fragment:
                raise ValueError(f"redirect URI {uri!r} must be an absolute http(s) URI")
        return value

    @model_validator(mode="after")
    def _https_redirects_outside_development(self) -> GatewaySettings:
        if self.environment != "development":
            for uri in self.redirect_uris():
                if not uri.startswith("https://") and urlsplit(uri).hostname not in LOOPBACK:
                    raise ValueError(f"redirect URI {uri!r} must use https outside development")
        return self

    def redirect_uris(self) -> list[str]:
        """Return the workspace's registered redirect URIs."""
        return [part.strip() for part in self.web_redirect_uris.split(",") if part.strip()]

    @property
    def secure_cookies(self) -> bool:
        """Whether cookies carry Secure (everywhere but development)."""
        return self.environment != "development"

    def body_limit(self, segment: str) -> int:
        """Return the body limit for the route whose first segment is `segment`."""
        return self.route_body_limits.get(segment, self.proxy_max_body_bytes)
