"""Nobody adds a reader silently: who registers keys, pending admin keys, the event feed."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from shared.crypto import thumbprint
from shared.demo import (
    ADMIN_ORG,
    AUDITOR_ORG,
    DEMO_HEALTH_SERVICE,
    HEALTH_PROVIDER_ORG,
    HOST_OFFICE_ORG,
    SECOND_HOST_OFFICE_ORG,
)
from tests.directory.conftest import Directory, public_jwk

PROVIDER = f"/organisations/{HEALTH_PROVIDER_ORG}"


def provider(directory: Directory) -> dict[str, str]:
    return directory.as_role("provider", HEALTH_PROVIDER_ORG)


async def admin_adds(directory: Directory, kid: str) -> dict[str, Any]:
    jwk = public_jwk(kid)
    response = await directory.client.post(
        f"{PROVIDER}/keys", json={"jwk": jwk}, headers=directory.admin
    )
    assert response.status_code == 201, response.text
    return {**response.json(), "sent_jwk": jwk}


async def published_kids(directory: Directory) -> set[str]:
    jwks = await directory.client.get(f"{PROVIDER}/jwks", headers=directory.service)
    resolved = await directory.client.get(
        "/agreements/resolve",
        params={"sender_org": str(HOST_OFFICE_ORG), "service_id": str(DEMO_HEALTH_SERVICE)},
        headers=directory.service,
    )
    recipient = {k["kid"] for k in resolved.json()["recipient"]["keys"]["keys"]}
    kids = {k["kid"] for k in jwks.json()["keys"]}
    assert kids == recipient
    return kids


async def events(directory: Directory, headers: dict[str, str] | None = None) -> list[Any]:
    response = await directory.client.get(
        f"{PROVIDER}/events", params={"limit": 200}, headers=headers or provider(directory)
    )
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


class TestAdminRegisteredKeys:
    @pytest.mark.promise(7)
    async def test_an_admin_key_waits_as_pending_and_is_not_encrypted_to(
        self, directory: Directory
    ) -> None:
        key = await admin_adds(directory, "steward-made")
        assert key["status"] == "pending"
        assert key["added_by_admin"] is True
        assert key["added_by"] == {
            "client_id": "admin-client",
            "org_id": str(ADMIN_ORG),
            "role": "admin",
        }
        assert "steward-made" not in await published_kids(directory)

    @pytest.mark.promise(7)
    async def test_the_organisation_sees_who_added_it_in_its_keys_and_events(
        self, directory: Directory
    ) -> None:
        key = await admin_adds(directory, "steward-made")
        listed = await directory.client.get(f"{PROVIDER}/keys", headers=provider(directory))
        mine = {k["kid"]: k for k in listed.json()}
        assert mine["steward-made"]["added_by_admin"] is True
        assert mine["steward-made"]["added_by"]["org_id"] == str(ADMIN_ORG)
        [event] = [e for e in await events(directory) if e["kid"] == "steward-made"]
        assert event["type"] == "key.added-by-admin"
        assert event["by_admin"] is True
        assert event["actor"] == {
            "client_id": "admin-client",
            "org_id": str(ADMIN_ORG),
            "role": "admin",
        }
        assert event["thumbprint"] == thumbprint(key["sent_jwk"])
        assert key["sent_jwk"]["x"] not in str(event)  # no key material beyond kid/thumbprint

    @pytest.mark.promise(7)
    async def test_the_organisation_confirms_and_then_it_is_used(
        self, directory: Directory
    ) -> None:
        await admin_adds(directory, "steward-made")
        confirmed = await directory.client.post(
            f"{PROVIDER}/keys/steward-made/confirm", headers=provider(directory)
        )
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["status"] == "active"
        assert confirmed.json()["confirmed_at"] is not None
        assert "steward-made" in await published_kids(directory)
        types = [e["type"] for e in await events(directory) if e["kid"] == "steward-made"]
        assert types == ["key.added-by-admin", "key.confirmed"]
        again = await directory.client.post(
            f"{PROVIDER}/keys/steward-made/confirm", headers=provider(directory)
        )
        assert again.status_code == 409
        assert again.json()["type"].endswith("key-not-pending")

    @pytest.mark.promise(7)
    async def test_the_admin_cannot_confirm_its_own_addition(self, directory: Directory) -> None:
        await admin_adds(directory, "steward-made")
        for headers in (directory.admin, directory.as_role("provider", SECOND_HOST_OFFICE_ORG)):
            response = await directory.client.post(
                f"{PROVIDER}/keys/steward-made/confirm", headers=headers
            )
            assert response.status_code == 403
        listed = await directory.client.get(f"{PROVIDER}/keys", headers=directory.admin)
        assert {k["kid"]: k["status"] for k in listed.json()}["steward-made"] == "pending"
        assert "steward-made" not in await published_kids(directory)

    @pytest.mark.promise(7)
    async def test_the_organisation_refuses_a_key_by_revoking_it(
        self, directory: Directory
    ) -> None:
        await admin_adds(directory, "steward-made")
        retired = await directory.client.patch(
            f"{PROVIDER}/keys/steward-made", json={"status": "retired"}, headers=provider(directory)
        )
        assert retired.status_code == 422
        assert retired.json()["type"].endswith("invalid-key")
        revoked = await directory.client.patch(
            f"{PROVIDER}/keys/steward-made", json={"status": "revoked"}, headers=provider(directory)
        )
        assert revoked.status_code == 200
        confirm = await directory.client.post(
            f"{PROVIDER}/keys/steward-made/confirm", headers=provider(directory)
        )
        assert confirm.status_code == 409
        types = [e["type"] for e in await events(directory) if e["kid"] == "steward-made"]
        assert types == ["key.added-by-admin", "key.revoked"]
        assert "steward-made" not in await published_kids(directory)


class TestOrganisationsOwnKeys:
    @pytest.mark.promise(7)
    async def test_its_own_key_is_active_at_once_and_recorded(self, directory: Directory) -> None:
        response = await directory.client.post(
            f"{PROVIDER}/keys", json={"jwk": public_jwk("own-key")}, headers=provider(directory)
        )
        assert response.status_code == 201
        body = response.json()
        assert body["status"] == "active" and body["added_by_admin"] is False
        assert body["added_by"] == {
            "client_id": "provider-client",
            "org_id": str(HEALTH_PROVIDER_ORG),
            "role": "provider",
        }
        assert "own-key" in await published_kids(directory)
        [event] = [e for e in await events(directory) if e["kid"] == "own-key"]
        assert event["type"] == "key.added" and event["by_admin"] is False

    @pytest.mark.promise(7)
    async def test_the_demo_seed_keys_are_the_organisations_own(self, directory: Directory) -> None:
        listed = await directory.client.get(f"{PROVIDER}/keys", headers=provider(directory))
        [seeded] = listed.json()
        assert seeded["status"] == "active" and seeded["added_by_admin"] is False
        assert seeded["kid"] in await published_kids(directory)


class TestOtherOrganisationsKeys:
    @pytest.mark.promise(7)
    async def test_another_organisation_may_not_read_or_touch_them(
        self, directory: Directory
    ) -> None:
        await admin_adds(directory, "steward-made")
        before = await directory.snapshot(f"{PROVIDER}/keys")
        outsider = directory.as_role("host_office", HOST_OFFICE_ORG)
        attempts = [
            directory.client.get(f"{PROVIDER}/keys", headers=outsider),
            directory.client.get(f"{PROVIDER}/events", headers=outsider),
            directory.client.post(
                f"{PROVIDER}/keys", json={"jwk": public_jwk("intruder")}, headers=outsider
            ),
            directory.client.patch(
                f"{PROVIDER}/keys/steward-made", json={"status": "revoked"}, headers=outsider
            ),
            directory.client.post(f"{PROVIDER}/keys/steward-made/confirm", headers=outsider),
        ]
        for attempt in attempts:
            response = await attempt
            assert response.status_code == 403, response.request.url
            assert response.json()["type"].startswith("urn:refex:problem:")
        assert await directory.snapshot(f"{PROVIDER}/keys") == before

    @pytest.mark.promise(7)
    async def test_auditors_and_services_read_keys_and_events(self, directory: Directory) -> None:
        await admin_adds(directory, "steward-made")
        for headers in (directory.as_role("auditor", AUDITOR_ORG), directory.service):
            listed = await directory.client.get(f"{PROVIDER}/keys", headers=headers)
            assert listed.status_code == 200
            assert any(e["kid"] == "steward-made" for e in await events(directory, headers))

    @pytest.mark.promise(7)
    async def test_unknown_organisation_or_key_is_404(self, directory: Directory) -> None:
        missing = await directory.client.get(
            f"/organisations/{uuid.uuid4()}/events", headers=directory.admin
        )
        assert missing.status_code == 404
        no_key = await directory.client.post(
            f"{PROVIDER}/keys/no-such-kid/confirm", headers=provider(directory)
        )
        assert no_key.status_code == 404
        assert no_key.json()["type"].endswith("key-not-found")
