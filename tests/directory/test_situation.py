"""Situation reports, service intake and the change feed, through the directory's HTTP API."""

from __future__ import annotations

from typing import Any

import pytest

from services.directory.partner_seed import SKILLS_ACADEMY
from services.directory.seed import SN_COORDINATOR
from shared.demo import (
    COORDINATOR_ORG,
    DEMO_HEALTH_SERVICE,
    HEALTH_PROVIDER_ORG,
    HOST_OFFICE_ORG,
)
from tests.directory.conftest import Directory


def report(org: object = COORDINATOR_ORG, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "organisation_id": str(org),
        "country": "NG",
        "admin_area": "NG-LA",
        "topics": ["security"],
        "language": "en",
        "title": "Lagos: road checkpoints after dark",
        "summary": "Checkpoints on the Lekki road slow travel to the clinic after 19:00.",
        "valid_from": "2026-01-01T00:00:00Z",
        "valid_until": "2030-01-01T00:00:00Z",
    }
    body.update(changes)
    return body


async def publish(directory: Directory, body: dict[str, Any], org: object = COORDINATOR_ORG) -> Any:
    response = await directory.client.post(
        "/situation-reports", json=body, headers=directory.as_role("coordinator", org)
    )
    assert response.status_code == 201, response.text
    return response.json()


class TestSituationReports:
    async def test_a_partner_publishes_on_its_country_and_a_host_office_with_an_agreement_reads(
        self, directory: Directory
    ) -> None:
        created = await publish(directory, report())
        assert created["version"] == 1 and created["current"] is True
        host = directory.as_role("host_office", HOST_OFFICE_ORG)
        read = await directory.client.get(f"/situation-reports/{created['id']}", headers=host)
        assert read.status_code == 200
        assert read.json()["title"] == "Lagos: road checkpoints after dark"

    async def test_a_partner_without_an_agreement_in_the_country_does_not_see_it(
        self, directory: Directory
    ) -> None:
        created = await publish(directory, report())
        senegal = directory.as_role("coordinator", SN_COORDINATOR)
        read = await directory.client.get(f"/situation-reports/{created['id']}", headers=senegal)
        assert read.status_code == 404
        assert read.json()["type"].endswith("situation-report-not-found")
        listing = await directory.client.get("/situation-reports", headers=senegal)
        assert created["id"] not in {item["id"] for item in listing.json()["items"]}

    async def test_a_new_version_replaces_the_current_one_and_keeps_the_old(
        self, directory: Directory
    ) -> None:
        first = await publish(directory, report())
        second = await publish(
            directory, report(series_id=first["series_id"], title="Lagos: checkpoints lifted")
        )
        assert (second["version"], second["series_id"]) == (2, first["series_id"])
        old = await directory.client.get(
            f"/situation-reports/{first['id']}", headers=directory.admin
        )
        assert old.json()["current"] is False

    async def test_reporting_on_another_country_is_refused_and_stores_nothing(
        self, directory: Directory
    ) -> None:
        before = await directory.snapshot("/situation-reports")
        response = await directory.client.post(
            "/situation-reports",
            json=report(country="SN", admin_area="SN-DK"),
            headers=directory.as_role("coordinator", COORDINATOR_ORG),
        )
        assert response.status_code == 403
        assert response.json()["type"].endswith("report-outside-your-country")
        assert await directory.snapshot("/situation-reports") == before

    async def test_publishing_for_another_organisation_is_refused(
        self, directory: Directory
    ) -> None:
        response = await directory.client.post(
            "/situation-reports",
            json=report(org=COORDINATOR_ORG),
            headers=directory.as_role("provider", HEALTH_PROVIDER_ORG),
        )
        assert response.status_code == 403
        assert response.json()["type"].endswith("not-your-organisation")

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"topics": ["weather"]}, "topics"),
            ({"valid_until": "2025-01-01T00:00:00Z"}, None),
            ({"admin_area": "SN-DK"}, None),
            ({"language": "xx"}, "language"),
        ],
    )
    async def test_bad_reports_answer_422_and_store_nothing(
        self, directory: Directory, changes: dict[str, Any], field: str | None
    ) -> None:
        before = await directory.snapshot("/situation-reports")
        response = await directory.client.post(
            "/situation-reports",
            json=report(**changes),
            headers=directory.as_role("coordinator", COORDINATOR_ORG),
        )
        assert response.status_code == 422, response.text
        if field:
            assert any(field in error["loc"] for error in response.json()["errors"])
        assert await directory.snapshot("/situation-reports") == before

    async def test_a_series_of_another_organisation_is_refused(self, directory: Directory) -> None:
        theirs = await publish(directory, report())
        response = await directory.client.post(
            "/situation-reports",
            json=report(org=HEALTH_PROVIDER_ORG, series_id=theirs["series_id"]),
            headers=directory.as_role("provider", HEALTH_PROVIDER_ORG),
        )
        assert response.status_code == 422
        assert response.json()["type"].endswith("invalid-reference")

    async def test_the_list_filters_by_topic_and_pages_with_a_cursor(
        self, directory: Directory
    ) -> None:
        for n in range(3):
            await publish(directory, report(title=f"Report {n}", topics=["access_to_documents"]))
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"topic": "access_to_documents", "limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = await directory.client.get(
                "/situation-reports", params=params, headers=directory.admin
            )
            body = page.json()
            seen += [item["title"] for item in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen == ["Report 2", "Report 1", "Report 0"]


def intake(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "temporarily_closed", "reopens_on": "2027-01-15"}
    body.update(changes)
    return body


class TestServiceIntake:
    async def test_the_provider_closes_its_service_and_search_flags_or_leaves_it_out(
        self, directory: Directory
    ) -> None:
        provider = directory.as_role("provider", HEALTH_PROVIDER_ORG)
        response = await directory.client.put(
            f"/services/{DEMO_HEALTH_SERVICE}/intake", json=intake(), headers=provider
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "temporarily_closed"
        search = {"category": "health", "country": "NG", "limit": 200}
        flagged = await directory.client.get("/services/search", params=search, headers=provider)
        hits = {item["id"]: item for item in flagged.json()["items"]}
        assert hits[str(DEMO_HEALTH_SERVICE)]["intake_status"] == "temporarily_closed"
        kept = await directory.client.get(
            "/services/search", params={**search, "available": "true"}, headers=provider
        )
        ids = {item["id"] for item in kept.json()["items"]}
        assert str(DEMO_HEALTH_SERVICE) not in ids and ids

    async def test_a_service_never_stated_is_open(self, directory: Directory) -> None:
        read = await directory.client.get(
            f"/services/{DEMO_HEALTH_SERVICE}/intake", headers=directory.admin
        )
        assert read.json()["status"] == "open" and read.json()["updated_at"] is None

    async def test_another_organisation_may_not_state_it(self, directory: Directory) -> None:
        response = await directory.client.put(
            f"/services/{DEMO_HEALTH_SERVICE}/intake",
            json=intake(),
            headers=directory.as_role("provider", SKILLS_ACADEMY),
        )
        assert response.status_code == 403
        read = await directory.client.get(
            f"/services/{DEMO_HEALTH_SERVICE}/intake", headers=directory.admin
        )
        assert read.json()["status"] == "open"

    async def test_a_reopening_date_on_an_open_service_is_422(self, directory: Directory) -> None:
        response = await directory.client.put(
            f"/services/{DEMO_HEALTH_SERVICE}/intake",
            json=intake(status="open"),
            headers=directory.as_role("provider", HEALTH_PROVIDER_ORG),
        )
        assert response.status_code == 422


class TestChangeFeed:
    async def test_the_feed_shows_new_reports_and_intake_changes_newest_first(
        self, directory: Directory
    ) -> None:
        created = await publish(directory, report())
        await directory.client.put(
            f"/services/{DEMO_HEALTH_SERVICE}/intake",
            json=intake(status="limited", reopens_on=None, places_left=2),
            headers=directory.as_role("provider", HEALTH_PROVIDER_ORG),
        )
        host = directory.as_role("host_office", HOST_OFFICE_ORG)
        feed = await directory.client.get("/changes/feed", headers=host)
        assert feed.status_code == 200
        body = feed.json()
        assert body["version"] == "https://jsonfeed.org/version/1.1"
        events = [(item["_refex"]["event"], item["_refex"]["object_id"]) for item in body["items"]]
        assert events[:2] == [
            ("service.intake-changed", str(DEMO_HEALTH_SERVICE)),
            ("situation-report.published", created["id"]),
        ]

    async def test_reports_of_countries_the_caller_may_not_see_stay_out_of_its_feed(
        self, directory: Directory
    ) -> None:
        created = await publish(directory, report())
        feed = await directory.client.get(
            "/changes/feed",
            params={"limit": 200},
            headers=directory.as_role("coordinator", SN_COORDINATOR),
        )
        assert created["id"] not in {item["_refex"]["object_id"] for item in feed.json()["items"]}
