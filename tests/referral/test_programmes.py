"""Referrals name their programme; lists and inboxes filter by programme and host country."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shared.demo import (
    ADMIN_ORG,
    DEMO_HEALTH_SERVICE,
    EU_PROGRAMME,
    HEALTH_PROVIDER_ORG,
    HOST_OFFICE_ORG,
)
from tests.directory.conftest import SeededDatabases
from tests.referral.conftest import CASEFILE, Exchange, record_consent

SAHEL_HEALTH = "sahel-health-2026"
SUBJECTS = ("hof-2026-programme-subject-a1", "hof-2026-programme-subject-b2")


@pytest.fixture
def shared_directory(seeded_databases: SeededDatabases) -> Iterator[Callable[[str], str]]:
    """A fresh demo directory per test: these tests register a programme and an agreement."""
    yield seeded_databases.fresh
    seeded_databases.drop(templates=False)


async def second_programme(exchange: Exchange) -> None:
    """Give Berlin and the Lagos clinic a second agreement, under a second programme."""
    admin = exchange.as_role("admin", ADMIN_ORG)
    created = await exchange.directory.post(
        "/programmes",
        headers=admin,
        json={
            "code": SAHEL_HEALTH,
            "name": {"en": "Sahel health referrals"},
            "donor": "Demo Health Fund",
            "host_countries": ["DE"],
            "origin_countries": ["NG"],
            "starts_at": "2026-01-01T00:00:00Z",
        },
    )
    assert created.status_code == 201, created.text
    agreement = await exchange.directory.post(
        "/agreements",
        headers=admin,
        json={
            "sender_org_id": str(HOST_OFFICE_ORG),
            "provider_org_id": str(HEALTH_PROVIDER_ORG),
            "service_categories": ["health"],
            "permitted_categories": ["identity.basic", "contact"],
            "retention_days": 90,
            "valid_from": "2026-01-01T00:00:00Z",
            "programme": SAHEL_HEALTH,
        },
    )
    assert agreement.status_code == 201, agreement.text


async def send(exchange: Exchange, subject: str, **extra: Any) -> Any:
    await record_consent(exchange, ["identity.basic", "contact"], subject=subject)
    return await exchange.referral.post(
        "/referrals",
        headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
        json={
            "service_id": str(DEMO_HEALTH_SERVICE),
            "subject_ref": subject,
            "requested_categories": ["identity.basic", "contact"],
            "casefile": CASEFILE,
            **extra,
        },
    )


async def listed(exchange: Exchange, role: str, org: object, **params: str) -> list[Any]:
    response = await exchange.referral.get(
        "/referrals", params=params, headers=exchange.as_role(role, org)
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


class TestProgrammeOfAReferral:
    async def test_a_referral_takes_the_programme_of_the_only_agreement(
        self, exchange: Exchange
    ) -> None:
        response = await send(exchange, SUBJECTS[0])
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["programme"], body["host_country"], body["origin_country"]) == (
            EU_PROGRAMME,
            "DE",
            "NG",
        )

    async def test_with_two_programmes_the_office_must_name_one(self, exchange: Exchange) -> None:
        await second_programme(exchange)
        unnamed = await send(exchange, SUBJECTS[0])
        assert unnamed.status_code == 422
        problem = unnamed.json()
        assert problem["type"].endswith("programme-required")
        assert problem["programmes"] == [EU_PROGRAMME, SAHEL_HEALTH]
        assert await listed(exchange, "host_office", HOST_OFFICE_ORG) == []
        sahel = await send(exchange, SUBJECTS[0], programme=SAHEL_HEALTH)
        assert sahel.status_code == 201, sahel.text
        assert sahel.json()["programme"] == SAHEL_HEALTH
        assert sahel.json()["shared_categories"] == ["contact", "identity.basic"]
        eu = await send(exchange, SUBJECTS[1], programme=EU_PROGRAMME)
        assert eu.status_code == 201, eu.text
        assert eu.json()["agreement"]["id"] != sahel.json()["agreement"]["id"]

    async def test_a_programme_without_an_agreement_is_refused(self, exchange: Exchange) -> None:
        response = await send(exchange, SUBJECTS[0], programme="sahel-return-2026")
        assert response.status_code == 422
        assert response.json()["type"].endswith("no-agreement")
        assert "sahel-return-2026" in response.json()["detail"]
        assert await listed(exchange, "host_office", HOST_OFFICE_ORG) == []

    async def test_a_malformed_programme_code_is_422(self, exchange: Exchange) -> None:
        response = await send(exchange, SUBJECTS[0], programme="Not a code")
        assert response.status_code == 422
        assert "programme" in response.text


class TestFilters:
    async def test_lists_filter_by_programme_and_host_country_and_the_inbox_spans_all(
        self, exchange: Exchange
    ) -> None:
        await second_programme(exchange)
        sahel = (await send(exchange, SUBJECTS[0], programme=SAHEL_HEALTH)).json()["id"]
        eu = (await send(exchange, SUBJECTS[1], programme=EU_PROGRAMME)).json()["id"]
        office = ("host_office", HOST_OFFICE_ORG)
        only_sahel = await listed(exchange, *office, programme=SAHEL_HEALTH)
        assert [r["id"] for r in only_sahel] == [sahel]
        assert await listed(exchange, *office, host_country="IT") == []
        assert {r["id"] for r in await listed(exchange, *office, host_country="DE")} == {sahel, eu}
        inbox = await listed(exchange, "provider", HEALTH_PROVIDER_ORG, box="received")
        assert {r["id"] for r in inbox} == {sahel, eu}

    async def test_a_bad_filter_is_422(self, exchange: Exchange) -> None:
        response = await exchange.referral.get(
            "/referrals",
            params={"host_country": "germany"},
            headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
        )
        assert response.status_code == 422
