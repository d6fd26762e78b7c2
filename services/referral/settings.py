"""Settings of the referral service (environment prefix REFEX_REFERRAL_)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.outbox import OutboxSettings


class ReferralSettings(OutboxSettings):
    """Configuration of the referral service."""

    model_config = SettingsConfigDict(env_prefix="REFEX_REFERRAL_")
    service_name: ClassVar[str] = "referral"
    default_port: ClassVar[int] = 8003
    directory_url: str = "http://127.0.0.1:8001"
    consent_url: str = "http://127.0.0.1:8002"
    subject_hash_key: SecretStr = Field(
        SecretStr("dev-only-subject-hash-key"),
        description="Key of the HMAC that turns subject pseudonyms into lookup digests.",
    )
    webhook_signing_key_file: Path = Field(
        Path("var/referral/webhook-signing-key.jwk"),
        description="Private ES256 JWK that signs webhook bodies; generated in development.",
    )
    sla_interval_s: float = Field(60.0, gt=0, description="Seconds between SLA sweeps.")
    sla_grace_hours: float = Field(
        24.0,
        ge=0,
        description="Business hours after respond_by before an unanswered referral is cancelled.",
    )
    notes_max_per_referral: int = Field(
        200, ge=1, le=10_000, description="Notes one referral may hold; more are refused (409)."
    )
    note_max_chars: int = Field(
        20_000,
        ge=1,
        le=200_000,
        description="Characters one note may have; longer ones are refused (413). At most "
        "200,000, the bound of the API itself.",
    )
    sealed_reservation_ttl_s: int = Field(
        600,
        ge=30,
        le=86_400,
        description="Seconds a sealed-referral preview (its reserved referral id and key set) "
        "stays valid; after that the sender fetches the preview again.",
    )
