"""Engagement history, the contact log, capacity building and the partner page, over HTTP."""

from __future__ import annotations

from typing import Any

from services.directory.partner_seed import SKILLS_ACADEMY
from shared.demo import AUDITOR_ORG, HEALTH_PROVIDER_ORG, HOST_OFFICE_ORG
from tests.directory.conftest import Directory

ACADEMY = f"/organisations/{SKILLS_ACADEMY}"


def plan(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "assessed_on": "2026-10-01",
        "areas": ["case management"],
        "gaps": ["no written intake procedure"],
        "activities": [{"kind": "training", "title": "Intake procedure workshop"}],
        "indicators": [{"name": "Intake within a week (%)", "baseline": 20, "target": 80}],
    }
    body.update(changes)
    return body


class TestEngagementLevel:
    async def test_a_change_keeps_the_previous_level_in_the_history(
        self, directory: Directory
    ) -> None:
        response = await directory.client.post(
            f"{ACADEMY}/engagement",
            json={"level": "communication", "reason": "Joined the monthly coordination call."},
            headers=directory.admin,
        )
        assert response.status_code == 201, response.text
        change = response.json()
        assert (change["from_level"], change["to_level"]) == ("close_management", "communication")
        history = await directory.client.get(f"{ACADEMY}/engagement", headers=directory.admin)
        steps = [(i["from_level"], i["to_level"]) for i in history.json()["items"]]
        assert steps == [("close_management", "communication"), (None, "close_management")]
        org = await directory.client.get(ACADEMY, headers=directory.admin)
        assert org.json()["engagement_level"] == "communication"

    async def test_a_patch_of_the_level_is_recorded_too(self, directory: Directory) -> None:
        await directory.client.patch(
            ACADEMY, json={"engagement_level": "information"}, headers=directory.admin
        )
        history = await directory.client.get(f"{ACADEMY}/engagement", headers=directory.admin)
        latest = history.json()["items"][0]
        assert (latest["from_level"], latest["to_level"]) == ("close_management", "information")
        assert latest["changed_by_org_id"] and latest["strategy"]

    async def test_only_the_steward_sets_it_and_nothing_changes_otherwise(
        self, directory: Directory
    ) -> None:
        before = await directory.snapshot(f"{ACADEMY}/engagement")
        response = await directory.client.post(
            f"{ACADEMY}/engagement",
            json={"level": "information", "reason": "We would rather be informed only."},
            headers=directory.as_role("provider", SKILLS_ACADEMY),
        )
        assert response.status_code == 403
        assert await directory.snapshot(f"{ACADEMY}/engagement") == before

    async def test_the_seeded_clinic_shows_its_walk_to_close_management(
        self, directory: Directory
    ) -> None:
        history = await directory.client.get(
            f"/organisations/{HEALTH_PROVIDER_ORG}/engagement",
            headers=directory.as_role("provider", HEALTH_PROVIDER_ORG),
        )
        steps = [item["to_level"] for item in history.json()["items"]]
        assert steps == ["close_management", "communication", "information"]

    async def test_other_partners_may_not_read_the_history(self, directory: Directory) -> None:
        response = await directory.client.get(
            f"{ACADEMY}/engagement", headers=directory.as_role("host_office", HOST_OFFICE_ORG)
        )
        assert response.status_code == 403
        assert response.json()["type"].endswith("partner-records-private")


class TestContactsAndCapacity:
    async def test_the_organisation_logs_a_contact_and_auditors_read_it(
        self, directory: Directory
    ) -> None:
        logged = await directory.client.post(
            f"{ACADEMY}/contacts",
            json={
                "kind": "review",
                "occurred_on": "2026-11-30",
                "counterpart_org_id": str(HOST_OFFICE_ORG),
                "summary": "Annual review of the TVET referral pathway.",
                "decisions": ["Add a French-language course"],
            },
            headers=directory.as_role("provider", SKILLS_ACADEMY),
        )
        assert logged.status_code == 201, logged.text
        listing = await directory.client.get(
            f"{ACADEMY}/contacts", headers=directory.as_role("auditor", AUDITOR_ORG)
        )
        assert [item["id"] for item in listing.json()["items"]] == [logged.json()["id"]]

    async def test_a_contact_for_another_organisation_is_refused(
        self, directory: Directory
    ) -> None:
        response = await directory.client.post(
            f"{ACADEMY}/contacts",
            json={"kind": "meeting", "occurred_on": "2026-11-30", "summary": "Visit."},
            headers=directory.as_role("provider", HEALTH_PROVIDER_ORG),
        )
        assert response.status_code == 403

    async def test_a_contact_naming_an_unknown_counterpart_is_422(
        self, directory: Directory
    ) -> None:
        response = await directory.client.post(
            f"{ACADEMY}/contacts",
            json={
                "kind": "meeting",
                "occurred_on": "2026-11-30",
                "summary": "Visit.",
                "counterpart_org_id": "0192f000-0000-7000-8000-999999999999",
            },
            headers=directory.admin,
        )
        assert response.status_code == 422
        assert response.json()["type"].endswith("invalid-reference")

    async def test_progress_on_a_plan_moves_its_indicators(self, directory: Directory) -> None:
        own = directory.as_role("provider", SKILLS_ACADEMY)
        created = await directory.client.post(f"{ACADEMY}/capacity-plans", json=plan(), headers=own)
        assert created.status_code == 201, created.text
        plan_id, etag = created.json()["id"], created.headers["ETag"]
        assert created.json()["indicators"][0]["progress"] is None
        indicators = [
            {"name": "Intake within a week (%)", "baseline": 20, "target": 80, "current": 50}
        ]
        updated = await directory.client.patch(
            f"/capacity-plans/{plan_id}",
            json={"indicators": indicators},
            headers={**own, "If-Match": etag},
        )
        assert updated.status_code == 200, updated.text
        assert updated.json()["indicators"][0]["progress"] == 0.5
        stale = await directory.client.patch(
            f"/capacity-plans/{plan_id}", json={"gaps": []}, headers={**own, "If-Match": etag}
        )
        assert stale.status_code == 412

    async def test_a_plan_is_invisible_to_other_partners(self, directory: Directory) -> None:
        created = await directory.client.post(
            f"{ACADEMY}/capacity-plans", json=plan(), headers=directory.admin
        )
        other = directory.as_role("provider", HEALTH_PROVIDER_ORG)
        read = await directory.client.get(f"/capacity-plans/{created.json()['id']}", headers=other)
        assert read.status_code == 404

    async def test_an_indicator_whose_target_is_its_baseline_is_422(
        self, directory: Directory
    ) -> None:
        before = await directory.snapshot(f"{ACADEMY}/capacity-plans")
        bad = plan(indicators=[{"name": "Flat", "baseline": 5, "target": 5}])
        response = await directory.client.post(
            f"{ACADEMY}/capacity-plans", json=bad, headers=directory.admin
        )
        assert response.status_code == 422
        assert await directory.snapshot(f"{ACADEMY}/capacity-plans") == before


class TestPartnerPage:
    async def test_it_shows_engagement_contacts_capacity_and_the_sla_link(
        self, directory: Directory
    ) -> None:
        page = await directory.client.get(
            f"/organisations/{HEALTH_PROVIDER_ORG}/partner-page", headers=directory.admin
        )
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["engagement"][0]["to_level"] == "close_management"
        assert body["contacts"][0]["kind"] == "mou_signed"
        assert body["capacity_plans"][0]["indicators"][0]["progress"] == 0.5
        assert body["sla_performance_url"].endswith(f"recipient_org_id={HEALTH_PROVIDER_ORG}")

    async def test_other_partners_may_not_read_it(self, directory: Directory) -> None:
        page = await directory.client.get(
            f"/organisations/{HEALTH_PROVIDER_ORG}/partner-page",
            headers=directory.as_role("host_office", HOST_OFFICE_ORG),
        )
        assert page.status_code == 403
