"""A real directory, consent and referral service in one process, wired through HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from pydantic import SecretStr

from services.consent.app import create_app as create_consent
from services.consent.settings import ConsentSettings
from services.directory.app import create_app as create_directory
from services.directory.settings import DirectorySettings
from services.referral.app import create_app as create_referral
from services.referral.clients import ConsentClient, DirectoryClient
from services.referral.service import Clients
from services.referral.settings import ReferralSettings
from shared.demo import DEMO_KEYS_DIR, HEALTH_PROVIDER_ORG, HOST_OFFICE_ORG, PLATFORM_ORG
from shared.http import StaticToken
from shared.testing import TokenMinter
from tests.directory.conftest import SeededDatabases


@dataclass
class Exchange:
    """The three services under test and what the webhooks received."""

    directory: httpx.AsyncClient
    consent: httpx.AsyncClient
    referral: httpx.AsyncClient
    referral_app: Any
    minter: TokenMinter
    webhooks: list[httpx.Request] = field(default_factory=list)
    consent_app: Any = None

    def as_role(self, role: str, org: object) -> dict[str, str]:
        """Authorization header of a caller with `role` in organisation `org`."""
        return self.minter.headers(roles=[role], org=str(org), client=f"{role}-client")

    def private_key(self, org: object) -> dict[str, Any]:
        """The demo private key of an organisation (demo only)."""
        key: dict[str, Any] = orjson.loads((DEMO_KEYS_DIR / f"{org}.jwk").read_bytes())
        return key


@pytest.fixture(scope="session")
def shared_directory(seeded_databases: SeededDatabases) -> Iterator[Callable[[str], str]]:
    """One seeded directory per backend for all referral tests (they never change it)."""
    urls: dict[str, str] = {}
    kept: list[str] = []

    def url_for(backend: str) -> str:
        if backend not in urls:
            urls[backend] = seeded_databases.fresh(backend)
            if backend == "postgresql":  # keep it out of the per-test clean-up
                kept.append(seeded_databases.created.pop())
        return urls[backend]

    yield url_for
    seeded_databases.created.extend(kept)


@pytest.fixture
async def exchange(
    test_settings: Callable[..., Any],
    token_minter: TokenMinter,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    in_process: Any,
    seeded_databases: SeededDatabases,
    shared_directory: Callable[[str], str],
    backend: str,
) -> AsyncIterator[Exchange]:
    directory_settings = test_settings(DirectorySettings, database_url=shared_directory(backend))
    monkeypatch.chdir(seeded_databases.root)  # where the seed left the demo private keys
    directory_app = create_directory(directory_settings)
    consent_app = create_consent(test_settings(ConsentSettings))
    service_token = StaticToken(
        token_minter.token(
            roles=["service"], org=str(PLATFORM_ORG), client="referral-service", lifetime_s=3600
        )
    )
    received: list[httpx.Request] = []

    def webhook(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(204)

    clients = Clients(
        directory=DirectoryClient(
            "http://directory", tokens=service_token, transport=httpx.ASGITransport(directory_app)
        ),
        consent=ConsentClient(
            "http://consent", tokens=service_token, transport=httpx.ASGITransport(consent_app)
        ),
    )
    referral_app = create_referral(
        test_settings(
            ReferralSettings,
            workers_enabled=False,
            subject_hash_key=SecretStr("test-subject-hash-key-5f1c"),
            webhook_signing_key_file=tmp_path / "webhook.jwk",
        ),
        clients=clients,
        webhook_transport=httpx.MockTransport(webhook),
    )
    async with AsyncExitStack() as stack:
        directory = await stack.enter_async_context(in_process(directory_app))
        consent = await stack.enter_async_context(in_process(consent_app))
        referral = await stack.enter_async_context(in_process(referral_app))
        yield Exchange(
            directory, consent, referral, referral_app, token_minter, received, consent_app
        )


SUBJECT = "hof-2026-7f3a9c1e5b2d4a60"
REQUESTED_DEFAULT = ["identity.basic", "contact", "health.physical", "health.mental"]
CASEFILE = {
    "identity_basic": {"given_name": "CANARY-Amina", "family_name": "CANARY-Bello"},
    "contact": {"phone": "+234 803 555 0101", "address_on_return": "CANARY-12 Marina, Lagos"},
    "health_physical": {"conditions": ["CANARY-diabetes"]},
    "health_mental": {"psychosocial_needs": ["CANARY-trauma-support"]},
    "protection": {"concerns": ["CANARY-threat"]},
}


async def record_consent(
    exchange: Exchange,
    categories: list[str],
    *,
    subject: str = SUBJECT,
    org: object = HEALTH_PROVIDER_ORG,
    office: object = HOST_OFFICE_ORG,
    valid_until: str = "2030-01-01T00:00:00Z",
    role: str = "host_office",
) -> str:
    """As `office` (a `role`), record the consent for `categories` to go to `org`; return its id."""
    response = await exchange.consent.post(
        "/consents",
        headers=exchange.as_role(role, office),
        json={
            "subject_ref": subject,
            "grantor": "self",
            "grantee": {"kind": "organisation", "org_id": str(org)},
            "purpose": "referral",
            "categories": categories,
            "valid_until": valid_until,
            "evidence": {"method": "written", "form_sha256": "a" * 64},
            "language": "en",
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])
