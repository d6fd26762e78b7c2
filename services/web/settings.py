"""Settings of the workspace (environment prefix REFEX_WEB_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class WebSettings(ServiceSettings):
    """Configuration of the web workspace."""

    model_config = SettingsConfigDict(env_prefix="REFEX_WEB_")
    service_name: ClassVar[str] = "web"
    default_port: ClassVar[int] = 8005

    gateway_url: str = Field(
        "http://127.0.0.1:8000",
        description="The gateway as this server reaches it (token exchange and API calls).",
    )
    public_gateway_url: str = Field(
        "",
        description="The gateway as browsers reach it (the sign-in page); empty: the gateway URL.",
    )
    public_url: str = Field(
        "http://127.0.0.1:8005",
        description="The workspace's own address as browsers reach it; the OAuth redirect URI "
        "is this plus /auth/callback and must be listed in REFEX_GATEWAY_WEB_REDIRECT_URIS.",
    )
    oauth_client_id: str = Field(
        "refex-web", description="The workspace's public OAuth client id at the gateway."
    )
    session_ttl_s: int = Field(
        8 * 3600, ge=300, description="Longest life of a signed-in session, idle or not."
    )
    idle_timeout_s: int = Field(
        1800, ge=60, description="A session unused this long is signed out."
    )
    max_sessions: int = Field(
        10_000, ge=10, description="Most sessions kept in memory; the oldest go first."
    )
    upstream_timeout_s: float = Field(30.0, gt=0, description="Timeout of each call to the API.")

    @property
    def browser_gateway_url(self) -> str:
        """Where browsers are sent to sign in."""
        return (self.public_gateway_url or self.gateway_url).rstrip("/")

    @property
    def redirect_uri(self) -> str:
        """The OAuth redirect URI of this workspace."""
        return f"{self.public_url.rstrip('/')}/auth/callback"

    @property
    def secure_cookies(self) -> bool:
        """Cookies carry `Secure` everywhere but development."""
        return self.environment != "development"
