"""Reintegration plans through HTTP: the owner sees the whole plan, each party its own items."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select, update

from services.referral import repository
from services.referral.models import AuditEvent, PlanItem, Referral, ReintegrationPlan
from shared.demo import (
    AUDITOR_ORG,
    COORDINATOR_ORG,
    DEMO_MENTAL_HEALTH_SERVICE,
    HEALTH_PROVIDER_ORG,
    HOST_OFFICE_ORG,
    MENTAL_HEALTH_ORG,
    PLATFORM_ORG,
    SECOND_HOST_OFFICE_ORG,
)
from tests.referral.conftest import SUBJECT, Exchange, record_consent
from tests.referral.test_referrals_api import REQUESTED, referral_body, send

MENTAL = ["identity.basic", "contact", "health.mental"]


def host() -> dict[str, str]:
    return {"role": "host_office", "org": str(HOST_OFFICE_ORG)}


async def referrals_for(exchange: Exchange, subject: str = SUBJECT) -> tuple[str, str]:
    """A health and a psychosocial referral of one returnee; return their ids."""
    await record_consent(exchange, REQUESTED, subject=subject)
    await record_consent(exchange, MENTAL, subject=subject, org=MENTAL_HEALTH_ORG)
    health = await send(exchange, referral_body(subject_ref=subject))
    mental = await send(
        exchange,
        referral_body(
            subject_ref=subject,
            service_id=str(DEMO_MENTAL_HEALTH_SERVICE),
            requested_categories=MENTAL,
        ),
    )
    assert health.status_code == 201, health.text
    assert mental.status_code == 201, mental.text
    return health.json()["id"], mental.json()["id"]


def plan_body(health: str | None, mental: str | None, subject: str = SUBJECT) -> dict[str, Any]:
    return {
        "subject_ref": subject,
        "expected_return_date": "2027-03-01",
        "programme": "eu-reintegration-2026",
        "items": [
            {"phase": "pre_departure", "service_category": "reception", "status": "done"},
            {"phase": "post_return", "service_category": "health", "referral_id": health},
            {
                "phase": "post_return",
                "service_category": "mental_health_psychosocial",
                "referral_id": mental,
            },
            {"phase": "community", "service_category": "business_development"},
        ],
    }


async def create_plan(exchange: Exchange, body: dict[str, Any]) -> Any:
    return await exchange.referral.post(
        "/referrals/plans", json=body, headers=exchange.as_role("host_office", HOST_OFFICE_ORG)
    )


async def a_plan(exchange: Exchange) -> tuple[dict[str, Any], str, str]:
    health, mental = await referrals_for(exchange)
    response = await create_plan(exchange, plan_body(health, mental))
    assert response.status_code == 201, response.text
    return response.json(), health, mental


async def plan_state(exchange: Exchange) -> list[tuple[Any, ...]]:
    """Every stored plan and item, to show a refusal changed nothing."""
    async with exchange.referral_app.state.db.sessionmaker() as session:
        plans = (await session.execute(select(ReintegrationPlan))).scalars().all()
        items = (await session.execute(select(PlanItem))).scalars().all()
        return [
            *((p.id, p.version, p.expected_return_date, p.programme) for p in plans),
            *(
                (i.id, i.status, i.planned_date, i.referral_id)
                for i in sorted(items, key=lambda i: i.id)
            ),
        ]


async def move(exchange: Exchange, referral_id: str, org: object, **change: Any) -> None:
    response = await exchange.referral.post(
        f"/referrals/{referral_id}/status",
        headers=exchange.as_role("provider", org),
        json=change,
    )
    assert response.status_code == 200, response.text


class TestCreatePlan:
    async def test_the_owner_sees_every_item_with_status_from_its_referral(
        self, exchange: Exchange
    ) -> None:
        plan, health, mental = await a_plan(exchange)
        assert plan["owner_org_id"] == str(HOST_OFFICE_ORG)
        assert [(i["phase"], i["status"]) for i in plan["items"]] == [
            ("pre_departure", "done"),
            ("post_return", "referred"),
            ("post_return", "referred"),
            ("community", "planned"),
        ]
        assert plan["items"][1]["referral_id"] == health
        assert plan["items"][1]["referral_status"] == "requested"
        assert plan["progress"] == {
            "planned": 1,
            "referred": 2,
            "in_progress": 0,
            "done": 1,
            "cancelled": 0,
        }
        assert "subject_ref" not in plan and SUBJECT not in str(plan)
        read = await exchange.referral.get(
            f"/referrals/plans/{plan['id']}",
            headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
        )
        assert read.status_code == 200
        assert read.headers["etag"] == '"1"'
        assert read.json()["items"] == plan["items"]
        del mental

    async def test_the_plan_stores_no_pseudonym(self, exchange: Exchange) -> None:
        await a_plan(exchange)
        async with exchange.referral_app.state.db.engine.connect() as connection:
            rows = (await connection.execute(select(ReintegrationPlan.__table__))).all()
        assert rows and SUBJECT not in str(rows)

    async def test_one_plan_per_returnee(self, exchange: Exchange) -> None:
        plan, _, _ = await a_plan(exchange)
        again = await create_plan(exchange, plan_body(None, None))
        assert again.status_code == 409, again.text
        assert again.json()["type"] == "urn:refex:problem:plan-exists"
        assert again.json()["existing_plan_id"] == plan["id"]

    async def test_the_creation_is_audited(self, exchange: Exchange) -> None:
        plan, _, _ = await a_plan(exchange)
        async with exchange.referral_app.state.db.sessionmaker() as session:
            actions = list(
                await session.scalars(
                    select(AuditEvent.action).where(AuditEvent.referral_id == uuid.UUID(plan["id"]))
                )
            )
        assert actions == ["plan.created"]


class TestStatusFollowsReferrals:
    async def test_accepting_completing_and_rejecting_move_the_items(
        self, exchange: Exchange
    ) -> None:
        plan, health, mental = await a_plan(exchange)
        await move(exchange, health, HEALTH_PROVIDER_ORG, status="accepted")
        await move(exchange, mental, MENTAL_HEALTH_ORG, status="rejected", reason="no-capacity")
        owner = exchange.as_role("host_office", HOST_OFFICE_ORG)
        url = f"/referrals/plans/{plan['id']}"
        items = (await exchange.referral.get(url, headers=owner)).json()["items"]
        assert [i["status"] for i in items] == ["done", "in_progress", "cancelled", "planned"]
        await move(exchange, health, HEALTH_PROVIDER_ORG, status="completed", outcome="got-help")
        items = (await exchange.referral.get(url, headers=owner)).json()["items"]
        assert items[1]["status"] == "done" and items[1]["referral_status"] == "completed"


class TestVisibility:
    async def test_each_provider_sees_only_its_own_item(self, exchange: Exchange) -> None:
        plan, health, mental = await a_plan(exchange)
        url = f"/referrals/plans/{plan['id']}"
        for org, referral in ((HEALTH_PROVIDER_ORG, health), (MENTAL_HEALTH_ORG, mental)):
            seen = await exchange.referral.get(url, headers=exchange.as_role("provider", org))
            assert seen.status_code == 200, seen.text
            assert [i["referral_id"] for i in seen.json()["items"]] == [referral]
            assert sum(seen.json()["progress"].values()) == 1
            listed = await exchange.referral.get(
                "/referrals/plans", headers=exchange.as_role("provider", org)
            )
            assert [[i["referral_id"] for i in p["items"]] for p in listed.json()["items"]] == [
                [referral]
            ]

    @pytest.mark.parametrize(
        ("role", "org"),
        [
            ("host_office", SECOND_HOST_OFFICE_ORG),
            ("coordinator", COORDINATOR_ORG),
            ("provider", uuid.UUID(int=7)),
        ],
    )
    async def test_anyone_else_gets_404_and_an_empty_list(
        self, exchange: Exchange, role: str, org: object
    ) -> None:
        plan, _, _ = await a_plan(exchange)
        headers = exchange.as_role(role, org)
        seen = await exchange.referral.get(f"/referrals/plans/{plan['id']}", headers=headers)
        assert seen.status_code == 404
        assert seen.json()["type"] == "urn:refex:problem:plan-not-found"
        listed = await exchange.referral.get("/referrals/plans", headers=headers)
        assert listed.json()["items"] == []

    async def test_a_provider_not_party_to_any_item_yet_does_not_see_the_plan(
        self, exchange: Exchange
    ) -> None:
        health, _ = await referrals_for(exchange)
        body = plan_body(health, None)
        body["items"][2].pop("referral_id")
        response = await create_plan(exchange, body)
        assert response.status_code == 201, response.text
        seen = await exchange.referral.get(
            f"/referrals/plans/{response.json()['id']}",
            headers=exchange.as_role("provider", MENTAL_HEALTH_ORG),
        )
        assert seen.status_code == 404

    async def test_auditors_see_the_whole_plan(self, exchange: Exchange) -> None:
        plan, _, _ = await a_plan(exchange)
        seen = await exchange.referral.get(
            f"/referrals/plans/{plan['id']}", headers=exchange.as_role("auditor", AUDITOR_ORG)
        )
        assert seen.status_code == 200
        assert len(seen.json()["items"]) == 4

    @pytest.mark.parametrize("role", ["provider", "coordinator", "auditor", "admin"])
    async def test_only_host_offices_create_and_edit(self, exchange: Exchange, role: str) -> None:
        plan, _, _ = await a_plan(exchange)
        before = await plan_state(exchange)
        headers = exchange.as_role(role, HEALTH_PROVIDER_ORG)
        created = await exchange.referral.post(
            "/referrals/plans",
            json=plan_body(None, None, "hof-2026-other-0000001"),
            headers=headers,
        )
        edited = await exchange.referral.patch(
            f"/referrals/plans/{plan['id']}",
            json={"expected_return_date": "2028-01-01"},
            headers=headers,
        )
        assert (created.status_code, edited.status_code) == (403, 403)
        assert await plan_state(exchange) == before

    async def test_another_office_cannot_edit(self, exchange: Exchange) -> None:
        plan, _, _ = await a_plan(exchange)
        before = await plan_state(exchange)
        other = exchange.as_role("host_office", SECOND_HOST_OFFICE_ORG)
        edited = await exchange.referral.patch(
            f"/referrals/plans/{plan['id']}", json={"programme": "other"}, headers=other
        )
        item = await exchange.referral.post(
            f"/referrals/plans/{plan['id']}/items",
            json={"phase": "arrival", "service_category": "reception"},
            headers=other,
        )
        assert (edited.status_code, item.status_code) == (404, 404)
        assert await plan_state(exchange) == before


class TestEditPlan:
    async def test_update_add_and_link_bump_the_etag(self, exchange: Exchange) -> None:
        health, mental = await referrals_for(exchange)
        plan = (await create_plan(exchange, plan_body(None, None))).json()
        owner = exchange.as_role("host_office", HOST_OFFICE_ORG)
        url = f"/referrals/plans/{plan['id']}"
        updated = await exchange.referral.patch(
            url, json={"expected_return_date": "2027-04-15"}, headers={**owner, "If-Match": '"1"'}
        )
        assert updated.status_code == 200, updated.text
        assert updated.json()["expected_return_date"] == "2027-04-15"
        assert updated.headers["etag"] == '"2"'
        health_item = updated.json()["items"][1]["id"]
        linked = await exchange.referral.patch(
            f"{url}/items/{health_item}",
            json={"referral_id": health, "planned_date": "2027-03-03"},
            headers={**owner, "If-Match": '"2"'},
        )
        assert linked.status_code == 200, linked.text
        item = linked.json()["items"][1]
        assert (item["referral_id"], item["status"], item["planned_date"]) == (
            health,
            "referred",
            "2027-03-03",
        )
        added = await exchange.referral.post(
            f"{url}/items",
            json={
                "phase": "arrival",
                "service_category": "reception",
                "planned_date": "2027-03-01",
            },
            headers=owner,
        )
        assert added.status_code == 201, added.text
        assert added.headers["etag"] == '"4"'
        assert len(added.json()["items"]) == 5
        unlinked = await exchange.referral.patch(
            f"{url}/items/{health_item}", json={"referral_id": None}, headers=owner
        )
        assert unlinked.json()["items"][1]["status"] == "planned"
        del mental

    async def test_a_stale_etag_is_412_and_changes_nothing(self, exchange: Exchange) -> None:
        plan, _, _ = await a_plan(exchange)
        before = await plan_state(exchange)
        stale = await exchange.referral.patch(
            f"/referrals/plans/{plan['id']}",
            json={"expected_return_date": "2028-01-01"},
            headers={**exchange.as_role("host_office", HOST_OFFICE_ORG), "If-Match": '"7"'},
        )
        assert stale.status_code == 412
        assert stale.json()["type"] == "urn:refex:problem:plan-changed"
        assert await plan_state(exchange) == before

    async def test_a_linked_items_status_cannot_be_set_by_hand(self, exchange: Exchange) -> None:
        plan, _, _ = await a_plan(exchange)
        before = await plan_state(exchange)
        response = await exchange.referral.patch(
            f"/referrals/plans/{plan['id']}/items/{plan['items'][1]['id']}",
            json={"status": "done"},
            headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
        )
        assert response.status_code == 409
        assert response.json()["type"] == "urn:refex:problem:plan-item-follows-referral"
        assert await plan_state(exchange) == before

    async def test_an_unknown_item_is_404(self, exchange: Exchange) -> None:
        plan, _, _ = await a_plan(exchange)
        response = await exchange.referral.patch(
            f"/referrals/plans/{plan['id']}/items/{uuid.uuid4()}",
            json={"status": "done"},
            headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
        )
        assert response.status_code == 404
        assert response.json()["type"] == "urn:refex:problem:plan-item-not-found"


class TestLinkingIsChecked:
    async def test_a_referral_of_another_returnee_or_unknown_is_refused(
        self, exchange: Exchange
    ) -> None:
        other_health, _ = await referrals_for(exchange, "hof-2026-other-0000001")
        for referral_id in (other_health, str(uuid.uuid4())):
            response = await create_plan(exchange, plan_body(referral_id, None))
            assert response.status_code == 422, response.text
            assert response.json()["type"] == "urn:refex:problem:referral-not-linkable"
        assert await plan_state(exchange) == []

    async def test_a_referral_another_office_sent_is_refused(self, exchange: Exchange) -> None:
        health, _ = await referrals_for(exchange)
        async with exchange.referral_app.state.db.sessionmaker() as session, session.begin():
            await session.execute(
                update(Referral)
                .where(Referral.id == uuid.UUID(health))
                .values(sender_org_id=SECOND_HOST_OFFICE_ORG)
            )
        response = await create_plan(exchange, plan_body(health, None))
        assert response.status_code == 422
        assert await plan_state(exchange) == []

    async def test_a_referral_for_another_category_is_refused(self, exchange: Exchange) -> None:
        health, mental = await referrals_for(exchange)
        response = await create_plan(exchange, plan_body(mental, health))
        assert response.status_code == 422
        assert "mental_health_psychosocial" in response.json()["detail"]
        assert await plan_state(exchange) == []

    async def test_a_referral_is_in_one_plan_item_only(self, exchange: Exchange) -> None:
        plan, health, _ = await a_plan(exchange)
        before = await plan_state(exchange)
        response = await exchange.referral.post(
            f"/referrals/plans/{plan['id']}/items",
            json={"phase": "post_return", "service_category": "health", "referral_id": health},
            headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
        )
        assert response.status_code == 409
        assert response.json()["type"] == "urn:refex:problem:referral-already-planned"
        assert await plan_state(exchange) == before

    async def test_the_database_refuses_a_link_a_concurrent_request_made_first(
        self, exchange: Exchange, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        plan, health, _ = await a_plan(exchange)
        before = await plan_state(exchange)

        async def not_seen(*args: Any, **kwargs: Any) -> None:
            return None  # as if the other request had not committed when this one looked

        monkeypatch.setattr(repository, "item_for_referral", not_seen)
        response = await exchange.referral.post(
            f"/referrals/plans/{plan['id']}/items",
            json={"phase": "post_return", "service_category": "health", "referral_id": health},
            headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
        )
        assert response.status_code == 409, response.text
        assert response.json()["type"] == "urn:refex:problem:referral-already-planned"
        assert await plan_state(exchange) == before

    @pytest.mark.parametrize(
        "body",
        [
            {"phase": "someday", "service_category": "health"},
            {"phase": "arrival", "service_category": "astrology"},
            {"phase": "arrival", "service_category": "health", "name": "Amina"},
        ],
    )
    async def test_bad_items_are_422(self, exchange: Exchange, body: dict[str, Any]) -> None:
        plan, _, _ = await a_plan(exchange)
        before = await plan_state(exchange)
        response = await exchange.referral.post(
            f"/referrals/plans/{plan['id']}/items",
            json=body,
            headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
        )
        assert response.status_code == 422
        assert await plan_state(exchange) == before

    async def test_an_empty_change_is_422(self, exchange: Exchange) -> None:
        plan, _, _ = await a_plan(exchange)
        response = await exchange.referral.patch(
            f"/referrals/plans/{plan['id']}",
            json={},
            headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
        )
        assert response.status_code == 422


class TestPaging:
    async def test_plans_page_with_cursors(self, exchange: Exchange) -> None:
        for n in range(3):
            response = await create_plan(exchange, plan_body(None, None, f"hof-plans-page-{n:04d}"))
            assert response.status_code == 201
        owner = exchange.as_role("host_office", HOST_OFFICE_ORG)
        seen, cursor = [], None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = await exchange.referral.get("/referrals/plans", params=params, headers=owner)
            assert page.status_code == 200
            seen += [p["id"] for p in page.json()["items"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) == 3
        admin = await exchange.referral.get(
            "/referrals/plans", headers=exchange.as_role("admin", PLATFORM_ORG)
        )
        assert len(admin.json()["items"]) == 3
        async with exchange.referral_app.state.db.sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(PlanItem)) == 12
