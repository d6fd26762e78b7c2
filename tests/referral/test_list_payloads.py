"""Lists carry metadata; the JWEs come with the single read or an explicit include=payload."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from services.referral.models import AuditEvent
from shared.client import open_note, open_payload
from shared.demo import AUDITOR_ORG, HEALTH_PROVIDER_ORG, HOST_OFFICE_ORG, SECOND_HOST_OFFICE_ORG
from tests.referral.conftest import CASEFILE, Exchange, record_consent
from tests.referral.test_referrals_api import REQUESTED, send

PROVIDER = ("provider", HEALTH_PROVIDER_ORG)
HOST = ("host_office", HOST_OFFICE_ORG)


async def listed(
    exchange: Exchange, who: tuple[str, Any], path: str = "/referrals", **params: Any
) -> Any:
    response = await exchange.referral.get(path, params=params, headers=exchange.as_role(*who))
    assert response.status_code == 200, response.text
    return response.json()


async def completed_with_note(exchange: Exchange) -> str:
    await record_consent(exchange, REQUESTED)
    created = (await send(exchange)).json()
    provider = exchange.as_role(*PROVIDER)
    path = f"/referrals/{created['id']}"
    for status in ("received", "accepted", "in-progress"):
        moved = await exchange.referral.post(
            f"{path}/status", json={"status": status}, headers=provider
        )
        assert moved.status_code == 200, moved.text
    note = await exchange.referral.post(
        f"{path}/notes", json={"text": "appointment on Monday"}, headers=provider
    )
    assert note.status_code == 201, note.text
    done = await exchange.referral.post(
        f"{path}/status",
        json={
            "status": "completed",
            "outcome": "got-help",
            "feedback": {"score": 5, "comment": "kind"},
        },
        headers=provider,
    )
    assert done.status_code == 200, done.text
    return str(created["id"])


async def reads_audited(exchange: Exchange) -> list[AuditEvent]:
    async with exchange.referral_app.state.db.sessionmaker() as session:
        rows = await session.scalars(
            select(AuditEvent).where(AuditEvent.action == "referral.read").order_by(AuditEvent.seq)
        )
        return list(rows)


class TestReferralLists:
    async def test_list_items_leave_the_payload_and_feedback_out_by_default(
        self, exchange: Exchange
    ) -> None:
        referral_id = await completed_with_note(exchange)
        for path, params in (("/referrals", {}), ("/referrals", {"box": "received"})):
            [item] = (await listed(exchange, PROVIDER, path, **params))["items"]
            assert item["id"] == referral_id
            assert item["payload"] is None and item["feedback"] is None
            assert item["encrypted_to"] and item["shared_categories"]
        single = await exchange.referral.get(
            f"/referrals/{referral_id}", headers=exchange.as_role(*PROVIDER)
        )
        assert single.json()["payload"]["recipients"]

    async def test_include_payload_brings_back_what_the_single_read_gives(
        self, exchange: Exchange
    ) -> None:
        referral_id = await completed_with_note(exchange)
        [item] = (await listed(exchange, PROVIDER, include="payload"))["items"]
        single = await exchange.referral.get(
            f"/referrals/{referral_id}", headers=exchange.as_role(*PROVIDER)
        )
        assert item["payload"] == single.json()["payload"]
        assert item["feedback"] == single.json()["feedback"] is not None
        opened = open_payload(item, exchange.private_key(HEALTH_PROVIDER_ORG))
        assert opened["identity_basic"] == CASEFILE["identity_basic"]

    async def test_each_payload_a_list_hands_out_is_audited_and_plain_lists_are_not(
        self, exchange: Exchange
    ) -> None:
        referral_id = await completed_with_note(exchange)
        before = len(await reads_audited(exchange))
        await listed(exchange, PROVIDER)
        assert len(await reads_audited(exchange)) == before
        await listed(exchange, PROVIDER, include="payload")
        [*_, row] = await reads_audited(exchange)
        assert len(await reads_audited(exchange)) == before + 1
        assert str(row.referral_id) == referral_id and row.actor_org_id == str(HEALTH_PROVIDER_ORG)
        assert row.details == {"listed": True}

    async def test_include_payload_gives_auditors_and_strangers_nothing_more(
        self, exchange: Exchange
    ) -> None:
        await completed_with_note(exchange)
        audited = await listed(exchange, ("auditor", AUDITOR_ORG), include="payload")
        assert [item["payload"] for item in audited["items"]] == [None]
        assert [item["feedback"] for item in audited["items"]] == [None]
        stranger = await listed(
            exchange, ("host_office", SECOND_HOST_OFFICE_ORG), include="payload"
        )
        assert stranger["items"] == []
        overdue = await listed(exchange, PROVIDER, "/referrals/overdue", include="payload")
        assert overdue["items"] == []  # completed referrals are never overdue

    async def test_an_unknown_include_is_refused_with_the_accepted_value(
        self, exchange: Exchange
    ) -> None:
        response = await exchange.referral.get(
            "/referrals", params={"include": "casefile"}, headers=exchange.as_role(*PROVIDER)
        )
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "payload" in response.text


class TestNoteLists:
    async def test_notes_list_metadata_by_default_and_bodies_on_request(
        self, exchange: Exchange
    ) -> None:
        referral_id = await completed_with_note(exchange)
        path = f"/referrals/{referral_id}/notes"
        [plain] = await listed(exchange, HOST, path)
        assert plain["body"] is None and plain["author_org_id"] == str(HEALTH_PROVIDER_ORG)
        [full] = await listed(exchange, HOST, path, include="payload")
        assert full["id"] == plain["id"]
        assert open_note(full, exchange.private_key(HOST_OFFICE_ORG)) == "appointment on Monday"

    async def test_include_payload_does_not_open_notes_to_strangers(
        self, exchange: Exchange
    ) -> None:
        referral_id = await completed_with_note(exchange)
        response = await exchange.referral.get(
            f"/referrals/{referral_id}/notes",
            params={"include": "payload"},
            headers=exchange.as_role("host_office", SECOND_HOST_OFFICE_ORG),
        )
        assert response.status_code == 404
