"""Reports and scorecards: SQL aggregation on both backends, small counts suppressed."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.referral.aggregates import Cell
from services.referral.models import Referral
from services.referral.reports import hidden_cells, suppress
from shared.demo import (
    AUDITOR_ORG,
    DEMO_HEALTH_SERVICE,
    HEALTH_PROVIDER_ORG,
    HOST_OFFICE_ORG,
    SECOND_HOST_OFFICE_ORG,
)
from tests.referral.conftest import Exchange

MARCH = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SECRET_DIGEST = "d" * 64


def row(n: int, programme: str, **changes: Any) -> Referral:
    """A stored referral made `n` minutes after 2 March 2026, 09:00 UTC."""
    created = MARCH + timedelta(minutes=n)
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "sender_org_id": HOST_OFFICE_ORG,
        "sender_client_id": "host-office-client",
        "recipient_org_id": HEALTH_PROVIDER_ORG,
        "service_id": DEMO_HEALTH_SERVICE,
        "service_category": "health",
        "programme": programme,
        "donor": "European Union",
        "host_country": "DE",
        "origin_country": "NG",
        "origin_area": "NG-LA",
        "purpose": "referral",
        "urgency": "routine",
        "subject_digest": SECRET_DIGEST,
        "status": "requested",
        "basis": "consent",
        "consent_ids": [],
        "agreement_id": uuid.uuid4(),
        "agreement_version": 1,
        "shared_categories": ["contact"],
        "withheld": {"health.mental": "no_consent"},
        "first_contact_missing": [],
        "payload": {"ciphertext": "x"},
        "recipient_kids": [],
        "created_at": created,
        "updated_at": created,
        "acknowledge_by": created + timedelta(hours=4),
        "respond_by": created + timedelta(hours=8),
    }
    values.update(changes)
    return Referral(**values)


def acknowledged(n: int, programme: str, hours: float, **changes: Any) -> Referral:
    referral = row(n, programme, **changes)
    referral.status = "received"
    referral.acknowledged_at = referral.created_at + timedelta(hours=hours)
    return referral


def completed(n: int, programme: str, hours: float, score: int) -> Referral:
    referral = acknowledged(n, programme, hours)
    referral.status = "completed"
    referral.accepted_at = referral.created_at + timedelta(hours=hours + 1)
    referral.outcome = "got-help"
    referral.feedback_score = score
    return referral


async def store(exchange: Exchange, rows: list[Referral]) -> None:
    async with exchange.referral_app.state.db.sessionmaker() as session, session.begin():
        session.add_all(rows)


def eu_rows() -> list[Referral]:
    """Seven EU referrals acknowledged after 1..7 hours (deadline 4 h), five completed."""
    rows = [completed(i, "eu", hours=i, score=4 + (i % 2)) for i in range(1, 6)]
    rows += [acknowledged(6, "eu", 6), acknowledged(7, "eu", 7)]
    return rows


async def seeded(exchange: Exchange) -> None:
    await store(
        exchange,
        [
            *eu_rows(),
            *(row(10 + i, "sahel") for i in range(3)),
            *(row(20 + i, "iraq") for i in range(6)),
        ],
    )


async def report(exchange: Exchange, org: object = AUDITOR_ORG, **params: Any) -> Any:
    role = "auditor" if org == AUDITOR_ORG else "host_office"
    query = {"from": "2026-01-01", "to": "2026-12-31", **params}
    return await exchange.referral.get(
        "/referrals/reports", params=query, headers=exchange.as_role(role, org)
    )


def by_programme(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["group"]["programme"]: r for r in body["rows"]}


class TestReportFigures:
    async def test_counts_times_outcomes_and_feedback_per_programme_and_month(
        self, exchange: Exchange
    ) -> None:
        await seeded(exchange)
        response = await report(exchange, group_by="programme", programme="eu")
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["from"], body["to"], body["threshold"]) == ("2026-01-01", "2026-12-31", 5)
        eu = by_programme(body)["eu"]
        assert eu["period"] == "2026-03"
        assert eu["sent"] == 7
        assert eu["acknowledged_on_time"] == "<5"  # 1, 2, 3 and 4 hours: four on time
        assert eu["accepted_on_time"] == 5  # accepted after 2..6 hours, deadline 8 hours
        # Nearest rank: the median of 1..7 is the 4th value, p90 the 7th.
        assert (eu["median_hours_to_acknowledge"], eu["p90_hours_to_acknowledge"]) == (4.0, 7.0)
        assert (eu["median_hours_to_accept"], eu["p90_hours_to_accept"]) == (4.0, 6.0)
        assert eu["outcomes"]["got-help"] == 5
        assert (eu["feedback_responses"], eu["mean_feedback_score"]) == (5, 4.6)
        assert eu["withheld"] == {"health.mental:no_consent": 7}
        assert body["total"]["sent"] == 7
        everything = (await report(exchange)).json()["total"]
        assert (everything["sent"], everything["withheld"]) == (
            16,
            {"health.mental:no_consent": 16},
        )

    async def test_a_small_cell_and_the_one_that_would_give_it_back_are_hidden(
        self, exchange: Exchange
    ) -> None:
        await seeded(exchange)
        rows = by_programme((await report(exchange, group_by="programme")).json())
        assert rows["sahel"]["sent"] == "<5"
        assert rows["sahel"]["median_hours_to_acknowledge"] == "<5"
        # 16 - 7 would reveal the 3 Sahel referrals: the next smallest (Iraq, 6) goes too.
        assert rows["iraq"]["sent"] == "<5"
        assert rows["iraq"]["withheld"]["health.mental:no_consent"] == "<5"
        assert rows["eu"]["sent"] == 7
        # Only the EU referrals were accepted (5): with the others at zero, total minus the
        # visible rows would show them as zero, so the EU cell is hidden as well.
        assert rows["eu"]["accepted_on_time"] == "<5"
        assert rows["eu"]["outcomes"]["got-help"] == "<5"

    async def test_periods_are_months_quarters_or_years(self, exchange: Exchange) -> None:
        await seeded(exchange)
        for period, label in (("month", "2026-03"), ("quarter", "2026-Q1"), ("year", "2026")):
            body = (await report(exchange, period=period)).json()
            assert [r["period"] for r in body["rows"]] == [label]
            assert body["rows"][0]["sent"] == 16

    async def test_several_dimensions_group_together(self, exchange: Exchange) -> None:
        await seeded(exchange)
        body = (
            await report(exchange, group_by="host_country,origin_country,partner,category,area")
        ).json()
        assert body["group_by"] == ["host_country", "origin_country", "partner", "category", "area"]
        (only,) = body["rows"]
        assert only["group"] == {
            "host_country": "DE",
            "origin_country": "NG",
            "partner": str(HEALTH_PROVIDER_ORG),
            "category": "health",
            "area": "NG-LA",
        }

    async def test_the_period_range_and_programme_filter_narrow_what_is_counted(
        self, exchange: Exchange
    ) -> None:
        await seeded(exchange)
        april = (await report(exchange, **{"from": "2026-04-01"})).json()
        assert april["rows"] == [] and april["total"]["sent"] == "<5"
        eu = (await report(exchange, programme="eu", group_by="outcome")).json()
        assert eu["total"]["sent"] == 7
        assert {r["group"]["outcome"] for r in eu["rows"]} == {"got-help", None}


class TestWhoSeesWhat:
    async def test_an_office_counts_only_its_own_referrals(self, exchange: Exchange) -> None:
        await seeded(exchange)
        berlin = (await report(exchange, HOST_OFFICE_ORG)).json()
        assert berlin["total"]["sent"] == 16
        rome = (await report(exchange, SECOND_HOST_OFFICE_ORG)).json()
        assert rome["rows"] == [] and rome["total"]["sent"] == "<5"

    async def test_no_personal_data_or_pseudonym_digest_in_any_format(
        self, exchange: Exchange
    ) -> None:
        await seeded(exchange)
        for output in ("json", "csv", "html"):
            response = await report(exchange, group_by="programme", format=output)
            assert response.status_code == 200
            assert SECRET_DIGEST not in response.text
            assert "ciphertext" not in response.text

    async def test_a_role_without_statistics_is_refused(self, exchange: Exchange) -> None:
        response = await exchange.referral.get(
            "/referrals/reports",
            headers=exchange.as_role("mental_health_professional", AUDITOR_ORG),
        )
        assert response.status_code == 403


class TestFormats:
    async def test_csv_is_a_download_with_the_json_columns(self, exchange: Exchange) -> None:
        await seeded(exchange)
        response = await report(exchange, group_by="programme", format="csv", programme="eu")
        assert response.headers["content-type"].startswith("text/csv")
        assert "attachment" in response.headers["content-disposition"]
        lines = list(csv.DictReader(io.StringIO(response.text)))
        eu = next(line for line in lines if line["programme"] == "eu")
        assert (eu["sent"], eu["acknowledged_on_time"], eu["outcome:got-help"]) == ("7", "<5", "5")
        assert lines[-1]["period"] == "total" and lines[-1]["sent"] == "7"

    async def test_html_is_printable_and_speaks_the_callers_language(
        self, exchange: Exchange
    ) -> None:
        await seeded(exchange)
        english = await report(exchange, group_by="programme", format="html")
        assert english.headers["content-type"].startswith("text/html")
        assert "@media print" in english.text and "Referrals sent" in english.text
        french = await exchange.referral.get(
            "/referrals/reports",
            params={"from": "2026-01-01", "group_by": "programme", "format": "html"},
            headers={**exchange.as_role("auditor", AUDITOR_ORG), "Accept-Language": "fr"},
        )
        assert '<html lang="fr">' in french.text
        assert "Orientations envoyées" in french.text

    @pytest.mark.parametrize(
        ("params", "status"),
        [
            ({"group_by": "programme,colour"}, 422),
            ({"period": "week"}, 422),
            ({"format": "pdf"}, 422),
            ({"from": "2026-05-01", "to": "2026-04-01"}, 400),
            ({"from": "01/05/2026"}, 422),
        ],
    )
    async def test_bad_parameters_say_what_to_send(
        self, exchange: Exchange, params: dict[str, str], status: int
    ) -> None:
        response = await report(exchange, **params)
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        if "colour" in str(params):
            assert "colour" in response.json()["detail"]
            assert "programme" in response.json()["detail"]


class TestScorecards:
    async def test_each_provider_sees_its_months_with_small_shares_hidden(
        self, exchange: Exchange
    ) -> None:
        await store(exchange, eu_rows())
        response = await exchange.referral.get(
            "/referrals/reports/scorecards",
            params={"from": "2026-01-01", "to": "2026-12-31"},
            headers=exchange.as_role("provider", HEALTH_PROVIDER_ORG),
        )
        assert response.status_code == 200, response.text
        (card,) = response.json()["items"]
        assert card["partner_org_id"] == str(HEALTH_PROVIDER_ORG)
        (march,) = card["months"]
        assert march["period"] == "2026-03" and march["sent"] == 7
        assert march["accepted_on_time_pct"] == 71.4
        assert march["acknowledged_on_time_pct"] == "<5"  # four of seven: the count is hidden


class TestStats:
    async def test_stats_are_aggregated_by_the_database(self, exchange: Exchange) -> None:
        await seeded(exchange)
        response = await exchange.referral.get(
            "/referrals/stats", headers=exchange.as_role("auditor", AUDITOR_ORG)
        )
        assert response.status_code == 200
        stats = response.json()
        assert stats["total"] == 16
        assert stats["by_programme"] == {"eu": 7, "sahel": 3, "iraq": 6}
        assert stats["by_status"] == {"completed": 5, "received": 2, "requested": 9}
        assert stats["median_hours_to_acknowledge"] == 4.0
        assert stats["share_with_outcome"] == 1.0
        assert stats["overdue"] == 11  # every open one: their deadlines of March 2026 passed


class TestSuppressionRule:
    def test_one_hidden_cell_hides_the_next_smallest(self) -> None:
        assert hidden_cells([7, 3, 6], 16) == {1, 2}
        assert hidden_cells([7, 3, 2], 12) == {1, 2}
        assert hidden_cells([7, 9], 16) == set()
        assert hidden_cells([4], 4) == {0}

    def test_hidden_cells_add_up_to_at_least_the_threshold(self) -> None:
        assert hidden_cells([5, 0, 0], 5) == {0, 1, 2}
        assert hidden_cells([9, 1, 1, 6], 17) == {1, 2, 3}

    def test_no_visible_cells_and_total_give_back_a_hidden_one(self) -> None:
        cells = [Cell(sent=s) for s in (12, 1, 8, 30)]
        shown = suppress(cells, Cell(sent=51))
        assert [f["sent"] for f in shown] == [12, "<5", "<5", 30, 51]
        assert shown[1]["median_hours_to_acknowledge"] == "<5"
