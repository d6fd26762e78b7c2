"""Settings of the referral service (environment prefix REFEX_REFERRAL_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ReferralSettings(ServiceSettings):
    """Configuration of the referral service."""

    model_config = SettingsConfigDict(env_prefix="REFEX_REFERRAL_")
    service_name: ClassVar[str] = "referral"
    default_port: ClassVar[int] = 8003
    directory_url: str = "http://127.0.0.1:8001"
    consent_url: str = "http://127.0.0.1:8002"
