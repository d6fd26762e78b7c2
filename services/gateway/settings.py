"""Settings of the gateway service (environment prefix REFEX_GATEWAY_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    """Configuration of the gateway service."""

    model_config = SettingsConfigDict(env_prefix="REFEX_GATEWAY_")
    service_name: ClassVar[str] = "gateway"
    default_port: ClassVar[int] = 8000
    directory_url: str = "http://127.0.0.1:8001"
    consent_url: str = "http://127.0.0.1:8002"
    referral_url: str = "http://127.0.0.1:8003"
