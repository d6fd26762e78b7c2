"""Settings of the consent service (environment prefix REFEX_CONSENT_)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.outbox import OutboxSettings
from shared.settings import VAR_DIR


class ConsentSettings(OutboxSettings):
    """Configuration of the consent service."""

    model_config = SettingsConfigDict(env_prefix="REFEX_CONSENT_")
    service_name: ClassVar[str] = "consent"
    default_port: ClassVar[int] = 8002
    referral_url: str = "http://127.0.0.1:8003"
    directory_url: str = "http://127.0.0.1:8001"
    ledger_signing_key: SecretStr | None = Field(
        None,
        description=(
            "Ed25519 private key of the ledger, 32 bytes base64 (`refex ledger keygen`); "
            "required in production, generated under var/ in development."
        ),
    )
    ledger_signing_key_file: Path = VAR_DIR / "consent" / "ledger-signing-key"
    tree_head_interval_s: float = Field(60.0, gt=0, le=60.0)
    ledger_retention_days: int = Field(3650, ge=1)
    retention_interval_s: float = Field(3600.0, gt=0)
