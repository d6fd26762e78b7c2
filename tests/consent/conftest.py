"""Fixtures of the consent service tests: an app per test, callers of each role, payloads."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.consent.app import create_app
from services.consent.settings import ConsentSettings
from shared.testing import TokenMinter

HOST_ORG = "0192f000-0000-7000-8000-000000000001"
OTHER_HOST_ORG = "0192f000-0000-7000-8000-000000000007"
CLINIC_ORG = "0192f000-0000-7000-8000-000000000002"
OTHER_CLINIC_ORG = "0192f000-0000-7000-8000-000000000009"
MHP_ORG = "0192f000-0000-7000-8000-000000000004"
AUDITOR_ORG = "0192f000-0000-7000-8000-000000000005"
PLATFORM_ORG = "0192f000-0000-7000-8000-000000000008"
SUBJECT = "rtn_7Qk2vX9mB4sLp0Wz"
OTHER_SUBJECT = "rtn_Zz9yX8wV7uT6sR5q"
FORM_SHA256 = hashlib.sha256(b"signed consent form").hexdigest()


class Callers:
    """Authorization headers for each kind of caller."""

    def __init__(self, minter: TokenMinter) -> None:
        self.minter = minter

    def host(self, org: str = HOST_ORG) -> dict[str, str]:
        return self.minter.headers(roles=["host_office"], org=org, client="host-client")

    def service(self) -> dict[str, str]:
        return self.minter.headers(roles=["service"], org=PLATFORM_ORG, client="referral-svc")

    def auditor(self) -> dict[str, str]:
        return self.minter.headers(roles=["auditor"], org=AUDITOR_ORG, client="dpo")

    def clinician(self) -> dict[str, str]:
        return self.minter.headers(
            roles=["mental_health_professional"], org=MHP_ORG, client="dr-okafor"
        )

    def provider(self) -> dict[str, str]:
        return self.minter.headers(roles=["provider"], org=CLINIC_ORG, client="clinic")


@pytest.fixture
def callers(token_minter: TokenMinter) -> Callers:
    return Callers(token_minter)


@pytest.fixture
def consent_settings(test_settings: Callable[..., Any]) -> Callable[..., ConsentSettings]:
    """Settings on a fresh database; background workers off unless a test turns them on."""

    def build(**overrides: Any) -> ConsentSettings:
        values: dict[str, Any] = {"workers_enabled": False}
        values.update(overrides)
        settings: ConsentSettings = test_settings(ConsentSettings, **values)
        return settings

    return build


@pytest.fixture
def consent_app(consent_settings: Callable[..., ConsentSettings]) -> FastAPI:
    """A consent app on a fresh database (built outside the event loop: migrations run sync)."""
    return create_app(consent_settings())


@pytest.fixture
async def client(
    consent_app: FastAPI,
    in_process: Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]],
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a consent app on a fresh database, workers off."""
    app = consent_app
    async with in_process(app) as http:
        http.app = app  # type: ignore[attr-defined]
        yield http


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def consent_body(**overrides: Any) -> dict[str, Any]:
    """A valid consent for SUBJECT to the clinic, for referral, valid for 180 days."""
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "subject_ref": SUBJECT,
        "grantor": "self",
        "grantee": {"kind": "organisation", "org_id": CLINIC_ORG},
        "purpose": "referral",
        "categories": ["identity.basic", "contact", "health.physical"],
        "valid_from": iso(now - timedelta(minutes=1)),
        "valid_until": iso(now + timedelta(days=180)),
        "evidence": {"method": "written", "form_sha256": FORM_SHA256},
        "language": "en",
    }
    body.update(overrides)
    return body


def decision_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject_ref": SUBJECT,
        "sender_org_id": HOST_ORG,
        "recipient_org_id": CLINIC_ORG,
        "recipient_country": "NG",
        "service_category": "health",
        "purpose": "referral",
        "requested_categories": ["identity.basic", "contact", "health.mental"],
    }
    body.update(overrides)
    return body


async def grant(client: httpx.AsyncClient, callers: Callers, **overrides: Any) -> dict[str, Any]:
    """Record a consent and return it."""
    response = await client.post(
        "/consents", json=consent_body(**overrides), headers=callers.host()
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result
