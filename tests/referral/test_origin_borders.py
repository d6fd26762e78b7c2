"""A national or local agreement carries no referral across a border or out of its area."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shared.demo import (
    ADMIN_ORG,
    DEMO_MENTAL_HEALTH_SERVICE,
    HEALTH_PROVIDER_ORG,
    MENTAL_HEALTH_ORG,
)
from tests.directory.conftest import SeededDatabases
from tests.referral.conftest import CASEFILE, Exchange, record_consent
from tests.referral.test_origin_senders import stored

SUBJECT = "lrc-2026-border-subject-0001"


@pytest.fixture
def shared_directory(seeded_databases: SeededDatabases) -> Iterator[Callable[[str], str]]:
    """A fresh demo directory per test: these tests move the clinic."""
    yield seeded_databases.fresh
    seeded_databases.drop(templates=False)


async def move_clinic(exchange: Exchange, **changes: Any) -> None:
    admin = exchange.as_role("admin", ADMIN_ORG)
    path = f"/organisations/{HEALTH_PROVIDER_ORG}"
    current = await exchange.directory.get(path, headers=admin)
    moved = await exchange.directory.patch(
        path, json=changes, headers={**admin, "If-Match": current.headers["etag"]}
    )
    assert moved.status_code == 200, moved.text


async def send_local(exchange: Exchange) -> Any:
    await record_consent(
        exchange,
        ["identity.basic", "contact"],
        subject=SUBJECT,
        org=MENTAL_HEALTH_ORG,
        office=HEALTH_PROVIDER_ORG,
        role="provider",
    )
    return await exchange.referral.post(
        "/referrals",
        headers=exchange.as_role("provider", HEALTH_PROVIDER_ORG),
        json={
            "service_id": str(DEMO_MENTAL_HEALTH_SERVICE),
            "subject_ref": SUBJECT,
            "requested_categories": ["identity.basic", "contact"],
            "casefile": CASEFILE,
        },
    )


class TestBorders:
    async def test_sender_and_service_in_different_countries_are_refused(
        self, exchange: Exchange
    ) -> None:
        await move_clinic(exchange, country="SN", admin_areas=["SN-DK"])
        response = await send_local(exchange)
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["type"].endswith(":pathway-not-covered")
        assert "international agreement" in problem["detail"]
        assert await stored(exchange) == 0

    async def test_a_local_agreement_stops_at_the_senders_areas(self, exchange: Exchange) -> None:
        await move_clinic(exchange, admin_areas=["NG-ED"])
        response = await send_local(exchange)
        assert response.status_code == 422, response.text
        assert response.json()["type"].endswith(":pathway-not-covered")
        assert await stored(exchange) == 0
