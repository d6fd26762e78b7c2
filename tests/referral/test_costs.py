"""A referral's cost through the API: estimate, actual, split by the agreement's rules, settle.

The demo agreement between Berlin and the Lagos clinic (health) has three rules: the clinic
waives a fixed 20.00 EUR, Berlin pays 70 % of the rest up to 400.00 EUR, the Nigerian
committee 30 %.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from services.referral.models import AuditEvent, CostShareLine, ReferralCost
from shared.demo import (
    ADMIN_ORG,
    AUDITOR_ORG,
    COORDINATOR_ORG,
    DEMO_HEALTH_SERVICE,
    HEALTH_PROVIDER_ORG,
    HOST_OFFICE_ORG,
    SECOND_HOST_OFFICE_ORG,
)
from tests.referral.conftest import CASEFILE, Exchange, record_consent

CLINIC, BERLIN, COMMITTEE = (
    str(o) for o in (HEALTH_PROVIDER_ORG, HOST_OFFICE_ORG, COORDINATOR_ORG)
)


async def referral(exchange: Exchange, subject: str = "hof-2026-costs-subject-01") -> str:
    await record_consent(exchange, ["identity.basic", "contact"], subject=subject)
    response = await exchange.referral.post(
        "/referrals",
        headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
        json={
            "service_id": str(DEMO_HEALTH_SERVICE),
            "subject_ref": subject,
            "requested_categories": ["identity.basic", "contact"],
            "casefile": CASEFILE,
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def office() -> tuple[str, object]:
    return ("host_office", HOST_OFFICE_ORG)


def clinic() -> tuple[str, object]:
    return ("provider", HEALTH_PROVIDER_ORG)


async def put_cost(
    exchange: Exchange,
    referral_id: str,
    kind: str,
    amount: Any,
    currency: str = "EUR",
    who: tuple[str, object] | None = None,
    **headers: str,
) -> Any:
    role, org = who or (office() if kind == "estimate" else clinic())
    return await exchange.referral.put(
        f"/referrals/{referral_id}/costs/{kind}",
        json={"amount": amount, "currency": currency},
        headers={**exchange.as_role(role, org), **headers},
    )


async def costs(exchange: Exchange, referral_id: str, role: str, org: object) -> Any:
    return await exchange.referral.get(
        f"/referrals/{referral_id}/costs", headers=exchange.as_role(role, org)
    )


async def accept(exchange: Exchange, referral_id: str) -> None:
    response = await exchange.referral.post(
        f"/referrals/{referral_id}/status",
        json={"status": "accepted"},
        headers=exchange.as_role(*clinic()),
    )
    assert response.status_code == 200, response.text


async def settle(
    exchange: Exchange, referral_id: str, payer: str, status: str, who: tuple[str, object]
) -> Any:
    return await exchange.referral.post(
        f"/referrals/{referral_id}/costs/settlements",
        json={"payer_org_id": payer, "status": status},
        headers=exchange.as_role(*who),
    )


def split(body: dict[str, Any]) -> dict[str, str]:
    return {share["payer_org_id"]: share["amount"] for share in body["shares"]}


class TestSplit:
    async def test_the_estimate_is_split_fixed_first_then_by_percentage(
        self, exchange: Exchange
    ) -> None:
        rid = await referral(exchange)
        response = await put_cost(exchange, rid, "estimate", "250.00")
        assert response.status_code == 200, response.text
        body = response.json()
        assert split(body) == {CLINIC: "20.00", BERLIN: "161.00", COMMITTEE: "69.00"}
        assert (body["estimated_amount"], body["actual_amount"]) == ("250.00", None)
        assert (body["uncovered_amount"], body["split_of"], body["currency"]) == (
            "0.00",
            "estimate",
            "EUR",
        )
        assert {s["status"] for s in body["shares"]} == {"pledged"}
        assert body["programme"] == "eu-reintegration-2026" and "half to even" in body["rounding"]
        assert response.headers["ETag"] == '"1"'

    async def test_a_cap_leaves_the_rest_uncovered(self, exchange: Exchange) -> None:
        rid = await referral(exchange)
        body = (await put_cost(exchange, rid, "estimate", "700")).json()
        assert split(body) == {CLINIC: "20.00", BERLIN: "400.00", COMMITTEE: "204.00"}
        assert body["uncovered_amount"] == "76.00"

    async def test_cents_are_rounded_and_the_shares_add_up_to_the_cost(
        self, exchange: Exchange
    ) -> None:
        rid = await referral(exchange)
        body = (await put_cost(exchange, rid, "estimate", "100.01")).json()
        # 80.01 after the fixed share: 56.007 and 24.003; the missing cent goes to 0.7.
        assert split(body) == {CLINIC: "20.00", BERLIN: "56.01", COMMITTEE: "24.00"}
        small = (await put_cost(exchange, rid, "estimate", "15.00")).json()
        assert split(small) == {CLINIC: "15.00", BERLIN: "0.00", COMMITTEE: "0.00"}
        assert small["uncovered_amount"] == "0.00"

    async def test_another_currency_is_refused_and_nothing_is_stored(
        self, exchange: Exchange
    ) -> None:
        rid = await referral(exchange)
        response = await put_cost(exchange, rid, "estimate", "100000", currency="NGN")
        assert response.status_code == 422
        assert response.json()["type"].endswith("cost-currency-mismatch")
        assert "EUR" in response.json()["detail"]
        missing = await costs(exchange, rid, *office())
        assert missing.status_code == 404
        assert missing.json()["type"].endswith("cost-not-recorded")

    async def test_amounts_are_decimal_strings_within_the_minor_unit(
        self, exchange: Exchange
    ) -> None:
        rid = await referral(exchange)
        for amount, currency in (
            (250, "EUR"),
            (250.5, "EUR"),
            ("250.005", "EUR"),
            ("-5", "EUR"),
            ("0", "EUR"),
            ("NaN", "EUR"),
            ("1e3", "EUR"),
            ("1_000", "EUR"),
            (" 250", "EUR"),
            ("10", "EURO"),
            ("10", "ABC"),
        ):
            response = await put_cost(exchange, rid, "estimate", amount, currency=currency)
            assert response.status_code == 422, (amount, currency, response.text)
        assert (await costs(exchange, rid, *office())).status_code == 404


class TestWhoDoesWhat:
    async def test_the_sender_estimates_the_provider_records_the_actual_cost(
        self, exchange: Exchange
    ) -> None:
        rid = await referral(exchange)
        by_provider = await put_cost(exchange, rid, "estimate", "100", who=clinic())
        assert by_provider.status_code == 403
        assert by_provider.json()["type"].endswith("cost-step-not-yours")
        await put_cost(exchange, rid, "estimate", "100")
        await accept(exchange, rid)
        by_sender = await put_cost(exchange, rid, "actual", "120", who=office())
        assert by_sender.status_code == 403
        for role, org in (("admin", ADMIN_ORG), ("auditor", AUDITOR_ORG)):
            response = await put_cost(exchange, rid, "estimate", "100", who=(role, org))
            assert response.status_code == 403
        assert (await costs(exchange, rid, *office())).json()["estimated_amount"] == "100.00"

    async def test_parties_payers_and_auditors_read_it_and_nobody_else(
        self, exchange: Exchange
    ) -> None:
        rid = await referral(exchange)
        await put_cost(exchange, rid, "estimate", "250")
        readers = [office(), clinic(), ("coordinator", COORDINATOR_ORG), ("auditor", AUDITOR_ORG)]
        for role, org in readers:
            response = await costs(exchange, rid, role, org)
            assert response.status_code == 200, (role, response.text)
        stranger = await costs(exchange, rid, "host_office", SECOND_HOST_OFFICE_ORG)
        assert stranger.status_code == 404
        assert stranger.json()["type"].endswith("referral-not-found")
        assert (await costs(exchange, rid, "admin", ADMIN_ORG)).status_code == 403
        report = await exchange.referral.get(
            "/referrals/reports/costs",
            headers=exchange.as_role("host_office", SECOND_HOST_OFFICE_ORG),
        )
        assert report.status_code == 200 and report.json()["rows"] == []

    async def test_a_cancelled_referral_takes_no_cost(self, exchange: Exchange) -> None:
        rid = await referral(exchange)
        cancelled = await exchange.referral.post(
            f"/referrals/{rid}/status",
            json={"status": "cancelled", "reason": "no-longer-needed"},
            headers=exchange.as_role(*office()),
        )
        assert cancelled.status_code == 200, cancelled.text
        response = await put_cost(exchange, rid, "estimate", "250")
        assert response.status_code == 409 and response.json()["type"].endswith("cost-locked")
        assert (await costs(exchange, rid, *office())).status_code == 404

    async def test_a_stale_if_match_is_412_and_changes_nothing(self, exchange: Exchange) -> None:
        rid = await referral(exchange)
        await put_cost(exchange, rid, "estimate", "250")
        stale = await put_cost(exchange, rid, "estimate", "300", **{"If-Match": '"7"'})
        assert stale.status_code == 412
        fresh = await put_cost(exchange, rid, "estimate", "300", **{"If-Match": '"1"'})
        assert fresh.status_code == 200 and fresh.headers["ETag"] == '"2"'
        assert fresh.json()["estimated_amount"] == "300.00"


class TestActualAndSettlement:
    async def test_actual_cost_after_acceptance_replaces_the_split_and_fixes_the_estimate(
        self, exchange: Exchange
    ) -> None:
        rid = await referral(exchange)
        await put_cost(exchange, rid, "estimate", "250")
        early = await put_cost(exchange, rid, "actual", "300")
        assert early.status_code == 409 and early.json()["type"].endswith("cost-too-early")
        await accept(exchange, rid)
        actual = await put_cost(exchange, rid, "actual", "300")
        assert actual.status_code == 200, actual.text
        body = actual.json()
        assert (body["estimated_amount"], body["actual_amount"], body["split_of"]) == (
            "250.00",
            "300.00",
            "actual",
        )
        assert split(body) == {CLINIC: "20.00", BERLIN: "196.00", COMMITTEE: "84.00"}
        locked = await put_cost(exchange, rid, "estimate", "260")
        assert locked.status_code == 409 and locked.json()["type"].endswith("cost-locked")

    async def test_pledged_then_invoiced_by_the_provider_then_paid_by_the_payer(
        self, exchange: Exchange
    ) -> None:
        rid = await referral(exchange)
        await put_cost(exchange, rid, "estimate", "250")
        before_actual = await settle(exchange, rid, BERLIN, "invoiced", clinic())
        assert before_actual.status_code == 409
        assert before_actual.json()["type"].endswith("cost-too-early")
        await accept(exchange, rid)
        await put_cost(exchange, rid, "actual", "250")
        skipped = await settle(exchange, rid, BERLIN, "paid", office())
        assert skipped.status_code == 409
        assert skipped.json()["type"].endswith("illegal-settlement")
        assert skipped.json()["allowed"] == ["invoiced"]
        by_payer = await settle(exchange, rid, BERLIN, "invoiced", office())
        assert by_payer.status_code == 403
        invoiced = await settle(exchange, rid, BERLIN, "invoiced", clinic())
        assert invoiced.status_code == 200, invoiced.text
        states = {s["payer_org_id"]: s["status"] for s in invoiced.json()["shares"]}
        assert states == {CLINIC: "pledged", BERLIN: "invoiced", COMMITTEE: "pledged"}
        not_theirs = await settle(exchange, rid, BERLIN, "paid", ("coordinator", COORDINATOR_ORG))
        assert not_theirs.status_code == 403
        paid = await settle(exchange, rid, BERLIN, "paid", office())
        assert paid.status_code == 200, paid.text
        berlin = next(s for s in paid.json()["shares"] if s["payer_org_id"] == BERLIN)
        assert berlin["status"] == "paid" and berlin["invoiced_at"] and berlin["paid_at"]
        again = await settle(exchange, rid, BERLIN, "paid", office())
        assert again.status_code == 409 and again.json()["allowed"] == []
        locked = await put_cost(exchange, rid, "actual", "260")
        assert locked.status_code == 409 and locked.json()["type"].endswith("cost-locked")
        unknown = await settle(exchange, rid, str(uuid.uuid4()), "invoiced", clinic())
        assert unknown.status_code == 422
        assert unknown.json()["type"].endswith("no-share-of-payer")

    async def test_every_step_is_audited_with_organisations_and_amounts_only(
        self, exchange: Exchange
    ) -> None:
        rid = await referral(exchange)
        await put_cost(exchange, rid, "estimate", "250")
        await accept(exchange, rid)
        await put_cost(exchange, rid, "actual", "250")
        await settle(exchange, rid, COMMITTEE, "invoiced", clinic())
        await settle(exchange, rid, COMMITTEE, "paid", ("coordinator", COORDINATOR_ORG))
        async with exchange.referral_app.state.db.sessionmaker() as session:
            events = (
                await session.scalars(
                    select(AuditEvent)
                    .where(AuditEvent.referral_id == uuid.UUID(rid))
                    .where(AuditEvent.action.like("cost.%"))
                    .order_by(AuditEvent.seq)
                )
            ).all()
            stored = [
                *(await session.scalars(select(ReferralCost))).all(),
                *(await session.scalars(select(CostShareLine))).all(),
            ]
        assert [e.action for e in events] == [
            "cost.estimated",
            "cost.actual-recorded",
            "cost.invoiced",
            "cost.paid",
        ]
        assert events[0].details["amount"] == "250.00 EUR"
        assert events[-1].details == {"payer_org_id": COMMITTEE, "amount": "69.00 EUR"}
        text = repr([e.details for e in events]) + repr([vars(row) for row in stored])
        assert "CANARY" not in text and "hof-2026" not in text
