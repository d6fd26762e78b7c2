"""The cost report: sums per programme, donor, payer, currency and status; small counts hidden."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta
from typing import Any

from services.referral.models import CostShareLine, Referral, ReferralCost
from shared.demo import AUDITOR_ORG, COORDINATOR_ORG, HOST_OFFICE_ORG
from tests.referral.conftest import Exchange
from tests.referral.test_reports import MARCH, row

EU, SAHEL = "eu-reintegration-2026", "sahel-return-2026"
BERLIN, COMMITTEE = str(HOST_OFFICE_ORG), str(COORDINATOR_ORG)


def line(referral: Referral, payer: object, minor: int, status: str, currency: str = "EUR") -> Any:
    return CostShareLine(
        id=uuid.uuid4(),
        referral_id=referral.id,
        cost_share_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{payer}:{currency}"),
        payer_org_id=payer,
        basis="percentage",
        amount_minor=minor,
        currency=currency,
        status=status,
        updated_at=MARCH,
    )


def cost(referral: Referral, minor: int, currency: str = "EUR") -> ReferralCost:
    return ReferralCost(
        referral_id=referral.id,
        currency=currency,
        actual_minor=minor,
        uncovered_minor=0,
        version=1,
        created_at=MARCH,
        updated_at=MARCH,
    )


async def seeded(exchange: Exchange) -> None:
    """Six EU referrals (Berlin paid 100.00, the committee pledged 30.00 of each), two Sahel
    ones (Berlin pledged 50.00) and one in CFA francs."""
    eu = [row(i, EU) for i in range(6)]
    sahel = [row(10 + i, SAHEL, donor="Sahel Fund") for i in range(2)]
    xof = row(20, SAHEL, donor="Sahel Fund")
    objects: list[Any] = [*eu, *sahel, xof]
    async with exchange.referral_app.state.db.sessionmaker() as session, session.begin():
        session.add_all(objects)
        await session.flush()
        for referral in eu:
            session.add_all(
                [
                    cost(referral, 13000),
                    line(referral, HOST_OFFICE_ORG, 10000, "paid"),
                    line(referral, COORDINATOR_ORG, 3000, "pledged"),
                ]
            )
        for referral in sahel:
            session.add_all(
                [cost(referral, 5000), line(referral, HOST_OFFICE_ORG, 5000, "pledged")]
            )
        session.add_all(
            [cost(xof, 5000, "XOF"), line(xof, HOST_OFFICE_ORG, 5000, "pledged", "XOF")]
        )


async def report(
    exchange: Exchange, role: str = "auditor", org: object = AUDITOR_ORG, **params: Any
) -> Any:
    query = {"from": "2026-01-01", "to": "2026-12-31", **params}
    response = await exchange.referral.get(
        "/referrals/reports/costs", params=query, headers=exchange.as_role(role, org)
    )
    assert response.status_code == 200, response.text
    return response


def keyed(rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], tuple[Any, Any]]:
    return {
        (r["programme"], r["donor"], r["payer_org_id"], r["currency"], r["status"]): (
            r["shares"],
            r["amount"],
        )
        for r in rows
    }


class TestCostReport:
    async def test_totals_per_programme_donor_payer_currency_and_status(
        self, exchange: Exchange
    ) -> None:
        await seeded(exchange)
        body = (await report(exchange, programme=EU)).json()
        assert keyed(body["rows"]) == {
            (EU, "European Union", BERLIN, "EUR", "paid"): (6, "600.00"),
            (EU, "European Union", COMMITTEE, "EUR", "pledged"): (6, "180.00"),
        }
        assert [(t["currency"], t["shares"], t["amount"]) for t in body["totals"]] == [
            ("EUR", 12, "780.00")
        ]
        assert (body["from"], body["programme"], body["threshold"]) == ("2026-01-01", EU, 5)

    async def test_a_small_row_and_the_one_that_would_give_it_back_are_hidden(
        self, exchange: Exchange
    ) -> None:
        await seeded(exchange)
        body = (await report(exchange)).json()
        rows = keyed(body["rows"])
        assert rows[(SAHEL, "Sahel Fund", BERLIN, "EUR", "pledged")] == ("<5", "<5")
        # 840.00 minus the committee's 180.00 would give the Sahel amount back: Berlin's EU
        # row (the next smallest) is hidden too.
        assert rows[(EU, "European Union", BERLIN, "EUR", "paid")] == ("<5", "<5")
        assert rows[(EU, "European Union", COMMITTEE, "EUR", "pledged")] == (6, "180.00")
        assert rows[(SAHEL, "Sahel Fund", BERLIN, "XOF", "pledged")] == ("<5", "<5")
        totals = {t["currency"]: (t["shares"], t["amount"]) for t in body["totals"]}
        assert totals == {"EUR": (14, "880.00"), "XOF": ("<5", "<5")}

    async def test_a_payer_counts_only_its_own_shares(self, exchange: Exchange) -> None:
        await seeded(exchange)
        body = (await report(exchange, "coordinator", COORDINATOR_ORG)).json()
        assert {r["payer_org_id"] for r in body["rows"]} == {COMMITTEE}
        assert [(t["shares"], t["amount"]) for t in body["totals"]] == [(6, "180.00")]

    async def test_the_period_narrows_what_is_counted(self, exchange: Exchange) -> None:
        await seeded(exchange)
        body = (await report(exchange, **{"from": "2026-04-01"})).json()
        assert body["rows"] == [] and body["totals"] == []
        too_early = MARCH - timedelta(days=1)
        body = (await report(exchange, to=too_early.date().isoformat())).json()
        assert body["rows"] == []

    async def test_csv_has_the_json_columns_and_the_totals(self, exchange: Exchange) -> None:
        await seeded(exchange)
        response = await report(exchange, programme=EU, format="csv")
        assert response.headers["content-type"].startswith("text/csv")
        assert "attachment" in response.headers["content-disposition"]
        lines = list(csv.reader(io.StringIO(response.text)))
        assert lines[0] == [
            "programme",
            "donor",
            "payer_org_id",
            "currency",
            "status",
            "shares",
            "amount",
        ]
        assert [EU, "European Union", BERLIN, "EUR", "paid", "6", "600.00"] in lines
        assert lines[-1] == ["", "", "", "EUR", "", "12", "780.00"]

    async def test_a_role_without_reports_and_a_bad_format_are_refused(
        self, exchange: Exchange
    ) -> None:
        refused = await exchange.referral.get(
            "/referrals/reports/costs",
            headers=exchange.as_role("mental_health_professional", COORDINATOR_ORG),
        )
        assert refused.status_code == 403
        html = await exchange.referral.get(
            "/referrals/reports/costs",
            params={"format": "html"},
            headers=exchange.as_role("auditor", AUDITOR_ORG),
        )
        assert html.status_code == 422
