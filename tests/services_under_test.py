"""Every service's settings class and app factory, from the registry, for tests of them all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import SecretStr

from services.registry import SERVICES as REGISTERED

# Secrets a service refuses to run without outside development, with test values.
TEST_SECRETS: dict[str, dict[str, Any]] = {
    "referral": {"subject_hash_key": SecretStr("test-subject-hash-key-7d2e")},
}

SERVICES: dict[str, tuple[type[Any], Callable[[Any], FastAPI]]] = {
    entry.name: (entry.settings_class(), entry.create_app) for entry in REGISTERED
}
