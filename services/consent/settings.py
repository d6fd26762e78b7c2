"""Settings of the consent service (environment prefix REFEX_CONSENT_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ConsentSettings(ServiceSettings):
    """Configuration of the consent service."""

    model_config = SettingsConfigDict(env_prefix="REFEX_CONSENT_")
    service_name: ClassVar[str] = "consent"
    default_port: ClassVar[int] = 8002
    referral_url: str = "http://127.0.0.1:8003"
    directory_url: str = "http://127.0.0.1:8001"
