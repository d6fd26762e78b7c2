"""Who sees what: webhook URLs and agreement details only for their organisation and overseers."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import update

from services.directory.models import Organisation
from shared.db import Database
from shared.demo import (
    AUDITOR_ORG,
    COORDINATOR_ORG,
    DEMO_HEALTH_SERVICE,
    HEALTH_PROVIDER_ORG,
    HOST_OFFICE_ORG,
    MENTAL_HEALTH_ORG,
    SECOND_HOST_OFFICE_ORG,
)
from tests.directory.conftest import Directory

HOOK = "https://hooks.example.org/refex/clinic"
HOST_HOOK = "https://hooks.example.org/refex/host"


async def set_webhooks(directory: Directory, hooks: dict[uuid.UUID, str]) -> None:
    """Store webhook URLs directly: these tests are about reading them, not about URL rules."""
    database = Database(directory.settings.database_url, pool_size=1)
    try:
        async with database.sessionmaker() as session, session.begin():
            for org_id, url in hooks.items():
                statement = update(Organisation).where(Organisation.id == org_id)
                await session.execute(statement.values(webhook_url=url))
    finally:
        await database.dispose()


@pytest.fixture
async def hooked(directory: Directory) -> Directory:
    await set_webhooks(directory, {HEALTH_PROVIDER_ORG: HOOK, HOST_OFFICE_ORG: HOST_HOOK})
    return directory


async def webhook_seen_by(directory: Directory, headers: dict[str, str]) -> Any:
    response = await directory.client.get(f"/organisations/{HEALTH_PROVIDER_ORG}", headers=headers)
    assert response.status_code == 200
    return response.json()["webhook_url"]


class TestWebhookUrl:
    @pytest.mark.promise(9)
    async def test_other_partners_do_not_see_it(self, hooked: Directory) -> None:
        for role, org in (
            ("host_office", HOST_OFFICE_ORG),
            ("provider", MENTAL_HEALTH_ORG),
            ("coordinator", COORDINATOR_ORG),
            ("mental_health_professional", MENTAL_HEALTH_ORG),
        ):
            assert await webhook_seen_by(hooked, hooked.as_role(role, org)) is None, role

    async def test_the_organisation_and_overseers_see_it(self, hooked: Directory) -> None:
        for headers in (
            hooked.as_role("provider", HEALTH_PROVIDER_ORG),
            hooked.admin,
            hooked.as_role("auditor", AUDITOR_ORG),
            hooked.service,
        ):
            assert await webhook_seen_by(hooked, headers) == HOOK

    @pytest.mark.promise(9)
    async def test_lists_and_members_hide_it_too(self, hooked: Directory) -> None:
        outsider = hooked.as_role("host_office", HOST_OFFICE_ORG)
        listing = await hooked.client.get("/organisations", params={"limit": 200}, headers=outsider)
        hooks = {item["id"]: item["webhook_url"] for item in listing.json()["items"]}
        assert hooks[str(HEALTH_PROVIDER_ORG)] is None
        assert hooks[str(HOST_OFFICE_ORG)] == HOST_HOOK  # its own
        members = await hooked.client.get(
            f"/organisations/{COORDINATOR_ORG}/members", params={"limit": 200}, headers=outsider
        )
        member_hooks = {item["id"]: item["webhook_url"] for item in members.json()["items"]}
        assert member_hooks[str(HEALTH_PROVIDER_ORG)] is None

    @pytest.mark.promise(9)
    async def test_resolution_gives_a_host_office_only_its_own(self, hooked: Directory) -> None:
        params = {"sender_org": str(HOST_OFFICE_ORG), "service_id": str(DEMO_HEALTH_SERVICE)}
        mine = await hooked.client.get(
            "/agreements/resolve",
            params=params,
            headers=hooked.as_role("host_office", HOST_OFFICE_ORG),
        )
        assert mine.status_code == 200
        assert mine.json()["recipient"]["webhook_url"] is None
        assert mine.json()["sender"]["webhook_url"] == HOST_HOOK
        service = await hooked.client.get(
            "/agreements/resolve", params=params, headers=hooked.service
        )
        assert service.json()["recipient"]["webhook_url"] == HOOK
        assert service.json()["sender"]["webhook_url"] == HOST_HOOK

    @pytest.mark.promise(9)
    async def test_a_host_office_cannot_resolve_as_another_sender(self, hooked: Directory) -> None:
        response = await hooked.client.get(
            "/agreements/resolve",
            params={"sender_org": str(HOST_OFFICE_ORG), "service_id": str(DEMO_HEALTH_SERVICE)},
            headers=hooked.as_role("host_office", SECOND_HOST_OFFICE_ORG),
        )
        assert response.status_code == 403
        assert response.json()["type"].endswith("not-your-organisation")
        assert HOST_HOOK not in response.text


async def health_agreement(directory: Directory) -> dict[str, Any]:
    listing = await directory.client.get(
        "/agreements",
        params={"sender_org_id": str(HOST_OFFICE_ORG), "provider_org_id": str(HEALTH_PROVIDER_ORG)},
        headers=directory.admin,
    )
    item: dict[str, Any] = listing.json()["items"][0]
    return item


class TestAgreementDetails:
    @pytest.mark.promise(9)
    async def test_non_parties_get_404_for_a_single_agreement(self, directory: Directory) -> None:
        agreement = await health_agreement(directory)
        path = f"/agreements/{agreement['id']}"
        for role, org in (
            ("host_office", SECOND_HOST_OFFICE_ORG),
            ("provider", MENTAL_HEALTH_ORG),
            ("coordinator", COORDINATOR_ORG),
        ):
            response = await directory.client.get(path, headers=directory.as_role(role, org))
            assert response.status_code == 404, role
            assert response.json()["type"].endswith("agreement-not-found")
            assert "permitted_categories" not in response.text

    async def test_parties_and_overseers_read_it(self, directory: Directory) -> None:
        agreement = await health_agreement(directory)
        path = f"/agreements/{agreement['id']}"
        for headers in (
            directory.as_role("host_office", HOST_OFFICE_ORG),
            directory.as_role("provider", HEALTH_PROVIDER_ORG),
            directory.admin,
            directory.as_role("auditor", AUDITOR_ORG),
        ):
            response = await directory.client.get(path, headers=headers)
            assert response.status_code == 200
            assert response.json()["permitted_categories"] == agreement["permitted_categories"]

    @pytest.mark.promise(9)
    async def test_lists_show_only_the_callers_agreements(self, directory: Directory) -> None:
        everything = await directory.client.get(
            "/agreements", params={"limit": 200}, headers=directory.admin
        )
        all_ids = {a["id"] for a in everything.json()["items"]}
        for role, org, host_office in (
            ("provider", MENTAL_HEALTH_ORG, False),
            ("host_office", SECOND_HOST_OFFICE_ORG, True),
        ):
            listing = await directory.client.get(
                "/agreements", params={"limit": 200}, headers=directory.as_role(role, org)
            )
            items = listing.json()["items"]
            assert items, role
            for item in items:
                named = str(org) in (item["provider_org_id"], item["sender_org_id"])
                assert named or (host_office and item["sender_org_id"] is None), item
            assert {a["id"] for a in items} < all_ids

    @pytest.mark.promise(9)
    async def test_a_filter_for_another_organisation_shows_nothing_of_it(
        self, directory: Directory
    ) -> None:
        listing = await directory.client.get(
            "/agreements",
            params={"sender_org_id": str(HOST_OFFICE_ORG)},
            headers=directory.as_role("host_office", SECOND_HOST_OFFICE_ORG),
        )
        assert listing.status_code == 200
        assert listing.json()["items"] == []
