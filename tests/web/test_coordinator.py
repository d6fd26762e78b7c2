"""The coordinator's page on a real stack: the queue routed to it, assigning, the followed list.

Driven through HTTP as a browser would (sign-in at the real gateway, the session cookie, the
forms with their CSRF token), then once in Chromium. Open referrals carry no personal data;
the followed list shows status and deadlines only, never the case file.
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest

from services import demo
from shared.client import RefexClient
from shared.demo import (
    COORDINATOR_ORG,
    DEMO_CLIENTS_FILE,
    DEMO_HEALTH_SERVICE,
    DEMO_MENTAL_HEALTH_SERVICE,
    DEMO_USER_PASSWORD,
    DEMO_USERS,
    HEALTH_PROVIDER_ORG,
)
from tests.gateway.people import hidden_fields
from tests.web.conftest import RunningStack
from tests.web.test_browser_journey import check_page, sign_in, workspace

pytestmark = pytest.mark.system

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def host(running_stack: RunningStack) -> Iterator[RefexClient]:
    creds = orjson.loads((running_stack.workdir / DEMO_CLIENTS_FILE).read_bytes())["host_office"]
    with RefexClient(running_stack.base_url, creds["client_id"], creds["client_secret"]) as client:
        yield client


def open_referral(host: RefexClient, category: str = "health") -> dict[str, Any]:
    """As the demo host office, ask Nigeria's coordinator to choose a provider."""
    sent: dict[str, Any] = host.post(
        "referrals/open",
        {"service_category": category, "country": "NG", "requested_categories": ["identity.basic"]},
    )
    return sent


def person(stack: RunningStack, role: str, language: str = "en") -> httpx.Client:
    """An HTTP client that signed in to the workspace as the demo person of `role`."""
    web = httpx.Client(
        base_url=workspace(stack), headers={"Accept-Language": language}, trust_env=False
    )
    start = web.get("/auth/sign-in")
    assert start.status_code == 303, start.text
    authorize = urlsplit(start.headers["location"])
    with httpx.Client(base_url=stack.base_url, trust_env=False) as gateway:
        page = gateway.get(f"{authorize.path}?{authorize.query}")
        assert page.status_code == 200, page.text
        email, _org = DEMO_USERS[role]
        answer = gateway.post(
            "/oauth/authorize",
            data={**hidden_fields(page.text), "email": email, "password": DEMO_USER_PASSWORD},
        )
    assert answer.status_code == 303, answer.text
    back = urlsplit(answer.headers["location"])
    assert web.get(f"{back.path}?{back.query}").status_code == 200
    return web


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found is not None
    return found.group(1)


def row_of(page: httpx.Response, row_id: str) -> str:
    """The table row with this id, as HTML (empty when the page has none)."""
    found = re.search(rf'<tr id="{row_id}".*?</tr>', page.text, re.S)
    return found.group(0) if found else ""


@pytest.fixture
def coordinator(running_stack: RunningStack) -> Iterator[httpx.Client]:
    with closing(person(running_stack, "coordinator")) as web:
        yield web


class TestCoordinatorPage:
    def test_the_queue_offers_member_services_and_an_assignment_moves_to_followed(
        self, coordinator: httpx.Client, host: RefexClient
    ) -> None:
        routed = open_referral(host)
        assert coordinator.get("/").headers["location"] == "/coordinator"
        page = coordinator.get("/coordinator")
        assert page.status_code == 200
        assert 'href="/coordinator"' in page.text  # in the navigation
        row = row_of(page, f"open-{routed['id']}")
        assert f'value="{DEMO_HEALTH_SERVICE}"' in row
        # A member's service of another category is not offered for a health request.
        assert str(DEMO_MENTAL_HEALTH_SERVICE) not in row
        assert row_of(page, f"followed-{routed['id']}") == ""

        answer = coordinator.post(
            f"/coordinator/open/{routed['id']}/assign",
            data={"csrf": csrf_of(page), "service_id": str(DEMO_HEALTH_SERVICE)},
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/coordinator?assigned=1"
        stored = [o for o in host.get("referrals/open") if o["id"] == routed["id"]]
        assert stored[0]["status"] == "assigned"
        assert stored[0]["assigned_service_id"] == str(DEMO_HEALTH_SERVICE)

        after = coordinator.get(answer.headers["location"])
        assert "The sender was notified" in after.text
        assert row_of(after, f"open-{routed['id']}") == ""
        followed = row_of(after, f"followed-{routed['id']}")
        assert "Assigned, case file not sent yet" in followed
        assert "Lagos Returnee Clinic" in followed  # the member's name from the directory
        assert "Lagos Returnee Clinic (NG)" in after.text  # the member list

    def test_the_followed_list_shows_status_and_deadlines_never_the_case_file(
        self, coordinator: httpx.Client, host: RefexClient
    ) -> None:
        routed = open_referral(host)
        page = coordinator.get("/coordinator")
        coordinator.post(
            f"/coordinator/open/{routed['id']}/assign",
            data={"csrf": csrf_of(page), "service_id": str(DEMO_HEALTH_SERVICE)},
        )
        subject = f"coord-{secrets.token_hex(8)}"
        given_name = f"Routed-{secrets.token_hex(6)}"
        until = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        consent = {
            "subject_ref": subject,
            "grantor": "self",
            "grantee": {"kind": "organisation", "org_id": str(HEALTH_PROVIDER_ORG)},
            "purpose": "referral",
            "categories": ["identity.basic"],
            "valid_until": until,
            "language": "en",
            "evidence": {"method": "written", "form_sha256": "b" * 64},
        }
        host.post("consents", consent)
        referral = host.post(
            f"referrals/open/{routed['id']}/submit",
            {"subject_ref": subject, "casefile": {"identity_basic": {"given_name": given_name}}},
        )

        followed = row_of(coordinator.get("/coordinator"), f"followed-{routed['id']}")
        assert "New" in followed  # the referral's own status once the case file is sent
        # Deadlines as the provider's focal point reads them, in its time zone.
        zone = host.get(f"directory/services/{DEMO_HEALTH_SERVICE}/availability")["timezone"]
        deadline = datetime.fromisoformat(referral["acknowledge_by"]).astimezone(ZoneInfo(zone))
        assert f"{deadline:%Y-%m-%d %H:%M} ({zone})" in followed
        whole = coordinator.get("/coordinator").text
        assert given_name not in whole and subject not in whole
        assert referral["id"] not in whole  # no way into the referral from here

    def test_a_refusal_shows_the_apis_problem_and_changes_nothing(
        self, coordinator: httpx.Client, host: RefexClient
    ) -> None:
        routed = open_referral(host)
        page = coordinator.get("/coordinator")
        token = csrf_of(page)
        mismatched = coordinator.post(
            f"/coordinator/open/{routed['id']}/assign",
            data={"csrf": token, "service_id": str(DEMO_MENTAL_HEALTH_SERVICE)},
        )
        assert mismatched.status_code == 422
        assert "Choose a matching service." in html.unescape(mismatched.text)
        assert [o["status"] for o in host.get("referrals/open") if o["id"] == routed["id"]] == [
            "open"
        ]

        done = coordinator.post(
            f"/coordinator/open/{routed['id']}/assign",
            data={"csrf": token, "service_id": str(DEMO_HEALTH_SERVICE)},
        )
        assert done.status_code == 303
        again = coordinator.post(
            f"/coordinator/open/{routed['id']}/assign",
            data={"csrf": token, "service_id": str(DEMO_HEALTH_SERVICE)},
        )
        assert again.status_code == 409
        assert "only open ones can be assigned" in html.unescape(again.text)

    def test_a_form_without_its_csrf_token_or_service_is_refused(
        self, coordinator: httpx.Client, host: RefexClient
    ) -> None:
        routed = open_referral(host)
        page = coordinator.get("/coordinator")
        forged = coordinator.post(
            f"/coordinator/open/{routed['id']}/assign",
            data={"csrf": "not-the-token", "service_id": str(DEMO_HEALTH_SERVICE)},
        )
        assert forged.status_code == 403
        empty = coordinator.post(
            f"/coordinator/open/{routed['id']}/assign",
            data={"csrf": csrf_of(page), "service_id": ""},
        )
        assert empty.status_code == 422
        assert "Choose one of your member providers" in html.unescape(empty.text)
        unknown = coordinator.post(
            f"/coordinator/open/{DEMO_HEALTH_SERVICE}/assign",
            data={"csrf": csrf_of(page), "service_id": str(DEMO_HEALTH_SERVICE)},
        )
        assert unknown.status_code == 404
        stored = [o for o in host.get("referrals/open") if o["id"] == routed["id"]]
        assert stored[0]["status"] == "open"

    def test_other_roles_get_the_not_for_your_role_page(
        self, running_stack: RunningStack, host: RefexClient
    ) -> None:
        routed = open_referral(host)
        with closing(person(running_stack, "provider")) as provider:
            page = provider.get("/coordinator")
            assert page.status_code == 403
            assert "This page is for another role" in html.unescape(page.text)
            assert 'href="/coordinator"' not in page.text
            token = csrf_of(page)
            refused = provider.post(
                f"/coordinator/open/{routed['id']}/assign",
                data={"csrf": token, "service_id": str(DEMO_HEALTH_SERVICE)},
            )
            assert refused.status_code == 403
        stored = [o for o in host.get("referrals/open") if o["id"] == routed["id"]]
        assert stored[0]["status"] == "open"

    def test_signed_out_browsers_go_to_the_start_page(self, running_stack: RunningStack) -> None:
        with httpx.Client(base_url=workspace(running_stack), trust_env=False) as anonymous:
            answer = anonymous.get("/coordinator")
            assert answer.status_code == 303 and answer.headers["location"] == "/"

    def test_the_page_speaks_french(self, running_stack: RunningStack, host: RefexClient) -> None:
        open_referral(host)
        with closing(person(running_stack, "coordinator", language="fr")) as web:
            page = html.unescape(web.get("/coordinator").text)
        assert '<html lang="fr">' in page
        assert "Demandes à orienter vers un prestataire membre" in page
        assert "Attribuer" in page and "Coordonner" in page

    def test_the_demo_leaves_a_request_on_the_coordinators_page(
        self, coordinator: httpx.Client, running_stack: RunningStack
    ) -> None:
        journey = demo.Journey(running_stack.base_url)
        try:
            routed = demo.step_open_referral(journey)
        finally:
            journey.close()
        assert routed["coordinator_org_id"] == str(COORDINATOR_ORG)
        row = row_of(coordinator.get("/coordinator"), f"open-{routed['id']}")
        assert "identity.basic, contact" in row
        assert f'value="{DEMO_HEALTH_SERVICE}"' in row


class TestCoordinatorInChromium:
    def test_a_coordinator_signs_in_assigns_and_follows_it(
        self, chromium: Any, running_stack: RunningStack, host: RefexClient
    ) -> None:
        routed = open_referral(host)
        context = chromium.new_context(locale="en-GB")
        page = context.new_page()
        email, _org = DEMO_USERS["coordinator"]
        sign_in(page, running_stack, email, DEMO_USER_PASSWORD, lands_on="/coordinator")
        check_page(page, "coordinator")
        page.select_option(f"#service-{routed['id']}", str(DEMO_HEALTH_SERVICE))
        page.click(f"#open-{routed['id']} button[type=submit]")
        page.wait_for_url("**/coordinator?assigned=1")
        page.wait_for_selector("p.notice")
        assert page.locator(f"#open-{routed['id']}").count() == 0
        followed = page.locator(f"#followed-{routed['id']}")
        assert "Assigned, case file not sent yet" in followed.inner_text()
        stored = [o for o in host.get("referrals/open") if o["id"] == routed["id"]]
        assert stored[0]["status"] == "assigned"
        context.close()
