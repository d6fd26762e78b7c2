"""The four services' app factories and settings classes, for tests that cover them all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import SecretStr

from services.consent.app import create_app as create_consent
from services.consent.settings import ConsentSettings
from services.directory.app import create_app as create_directory
from services.directory.settings import DirectorySettings
from services.gateway.app import create_app as create_gateway
from services.gateway.settings import GatewaySettings
from services.referral.app import create_app as create_referral
from services.referral.settings import ReferralSettings

# Secrets a service refuses to run without outside development, with test values.
TEST_SECRETS: dict[str, dict[str, Any]] = {
    "referral": {"subject_hash_key": SecretStr("test-subject-hash-key-7d2e")},
}

SERVICES: dict[str, tuple[type[Any], Callable[[Any], FastAPI]]] = {
    "directory": (DirectorySettings, create_directory),
    "consent": (ConsentSettings, create_consent),
    "referral": (ReferralSettings, create_referral),
    "gateway": (GatewaySettings, create_gateway),
}
