"""Settings of the directory service (environment prefix REFEX_DIRECTORY_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class DirectorySettings(ServiceSettings):
    """Configuration of the directory service."""

    model_config = SettingsConfigDict(env_prefix="REFEX_DIRECTORY_")
    service_name: ClassVar[str] = "directory"
    default_port: ClassVar[int] = 8001
