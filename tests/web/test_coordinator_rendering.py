"""The coordinator page's template: overdue and stalled rows, choices, both languages.

A real stack cannot make a referral stall within a test (the deadlines are days away), so the
rendering of those states is checked here on the page's own template with API-shaped rows.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from services.web import service
from services.web.pages import build_environment
from services.web.schemas import FollowedView, MemberView, OpenReferralView, ServiceChoice
from services.web.service import CoordinatorDesk
from services.web.sessions import Person, SessionStore
from shared.i18n import use_language

OWN = "0192f000-0000-7000-8000-000000000003"
CLINIC = "0192f000-0000-7000-8000-000000000002"
WAITING = "0192f000-0000-7000-8000-000000000901"
UNSERVED = "0192f000-0000-7000-8000-000000000902"
STALLED = "0192f000-0000-7000-8000-000000000903"
ASSIGNED = "0192f000-0000-7000-8000-000000000904"
CREATED = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _open(open_id: str, category: str) -> OpenReferralView:
    return OpenReferralView.model_validate(
        {
            "id": open_id,
            "status": "open",
            "sender_org_id": "0192f000-0000-7000-8000-000000000001",
            "coordinator_org_id": OWN,
            "service_category": category,
            "country": "NG",
            "admin_area": "NG-LA",
            "urgency": "routine",
            "requested_categories": ["identity.basic", "contact"],
            "created_at": CREATED,
        }
    )


def desk() -> CoordinatorDesk:
    stalled = FollowedView.model_validate(
        {
            "open_referral_id": STALLED,
            "open_status": "submitted",
            "service_category": "health",
            "assigned_org_id": CLINIC,
            "referral_id": "0192f000-0000-7000-8000-000000000905",
            "status": "requested",
            "acknowledge_by": datetime(2026, 12, 3, 9, 0, tzinfo=UTC),
            "overdue": True,
            "stalled_at": datetime(2026, 12, 3, 9, 5, tzinfo=UTC),
            "created_at": CREATED,
            "updated_at": CREATED,
        }
    )
    waiting = FollowedView.model_validate(
        {
            "open_referral_id": ASSIGNED,
            "open_status": "assigned",
            "service_category": "health",
            "assigned_org_id": CLINIC,
            "created_at": CREATED,
            "updated_at": CREATED,
        }
    )
    choice = ServiceChoice.model_validate(
        {
            "id": "0192f000-0000-7000-8000-000000000101",
            "organisation_id": CLINIC,
            "display_name": "Primary care",
            "category": "health",
            "country": "NG",
        }
    )
    clinic = MemberView.model_validate(
        {"id": CLINIC, "name": {"en": "Lagos Returnee Clinic"}, "country": "NG"}
    )
    return CoordinatorDesk(
        queue=[_open(WAITING, "health"), _open(UNSERVED, "education")],
        choices={WAITING: [choice], UNSERVED: []},
        members=[clinic],
        followed=[stalled, waiting],
        followed_truncated=False,
        zones={STALLED: "Africa/Lagos"},
        names={CLINIC: clinic.display_name("en")},
        incomplete=False,
    )


def render(lang: str) -> str:
    session = SessionStore(ttl_s=60, idle_s=60, capacity=4).create()
    session.person = Person(person_id="p", org_id=OWN, roles=("coordinator",))
    with use_language(lang):
        return (
            build_environment()
            .get_template("coordinator.html")
            .render(
                lang=lang,
                session=session,
                person=session.person,
                request_path="/coordinator",
                desk=desk(),
                status_labels=service.STATUS_LABELS,
                open_labels=service.OPEN_STATUS_LABELS,
                in_zone=service.in_zone,
            )
        )


def row(page: str, row_id: str) -> str:
    found = re.search(rf'<tr id="{row_id}"[^>]*>.*?</tr>', page, re.S)
    assert found is not None, row_id
    return found.group(0)


class TestCoordinatorTemplate:
    def test_a_stalled_overdue_referral_is_marked_with_local_times(self) -> None:
        stalled = row(render("en"), f"followed-{STALLED}")
        assert 'class="overdue"' in stalled
        assert "New · <strong>overdue</strong>" in stalled
        assert "2026-12-03 10:00 (Africa/Lagos)" in stalled  # acknowledge by, Lagos time
        assert "since 2026-12-03 10:05 (Africa/Lagos)" in stalled
        assert "Lagos Returnee Clinic" in stalled

    def test_an_assignment_without_a_case_file_yet_says_so_and_is_not_marked(self) -> None:
        waiting = row(render("en"), f"followed-{ASSIGNED}")
        assert "overdue" not in waiting
        assert "Assigned, case file not sent yet" in waiting

    def test_only_requests_with_a_member_service_get_a_form_with_the_csrf_token(self) -> None:
        page = render("en")
        waiting = row(page, f"open-{WAITING}")
        assert f'action="/coordinator/open/{WAITING}/assign"' in waiting
        assert 'name="csrf" value="' in waiting
        assert 'for="service-' in waiting  # the choice is labelled
        unserved = row(page, f"open-{UNSERVED}")
        assert "<form" not in unserved
        assert "No member offers this category in this country." in unserved

    @pytest.mark.parametrize(
        ("lang", "texts"),
        [
            ("en", ["What you assigned", "Member providers", "Assign"]),
            ("fr", ["Ce que vous avez attribué", "Prestataires membres", "Attribuer", "depuis le"]),
        ],
    )
    def test_the_page_is_in_the_readers_language(self, lang: str, texts: list[str]) -> None:
        page = render(lang)
        for text in texts:
            assert text in page
