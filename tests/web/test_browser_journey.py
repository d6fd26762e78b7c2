"""The provider's journey in a real browser: sign in, import the key, decrypt, answer.

Every request body the browser sends is recorded: neither the private key nor any decrypted
value may be among them. The pages are checked for size and accessibility basics on the way.
"""

from __future__ import annotations

import gzip
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import orjson
import pytest
from playwright.sync_api import expect

from proof.harness import consent_and_refer
from shared.client import RefexClient
from shared.crypto import generate_encryption_key, public_part
from shared.demo import (
    DEMO_CLIENTS_FILE,
    DEMO_HEALTH_SERVICE,
    DEMO_KEYS_DIR,
    DEMO_USER_PASSWORD,
    DEMO_USERS,
    HEALTH_PROVIDER_ORG,
    HOST_OFFICE_ORG,
    MENTAL_HEALTH_ORG,
)
from tests.web.conftest import RunningStack

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]
AXE = Path(__file__).with_name("vendor") / "axe.min.js"
SCREENSHOTS = ROOT / "docs" / "screenshots"
AXE_SOURCE = AXE.read_text() + "\n;true"
PAGE_LIMIT_BYTES = 100 * 1024


class Recorder:
    """Every request the page sends: its URL and its body."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def __call__(self, request: Any) -> None:
        self.sent.append((request.url, request.post_data_buffer or b""))

    def bodies(self) -> bytes:
        return b"\n".join(body for _, body in self.sent)


@pytest.fixture
def host(running_stack: RunningStack) -> Iterator[RefexClient]:
    creds = orjson.loads((running_stack.workdir / DEMO_CLIENTS_FILE).read_bytes())["host_office"]
    with RefexClient(running_stack.base_url, creds["client_id"], creds["client_secret"]) as client:
        yield client


def workspace(stack: RunningStack) -> str:
    return f"http://127.0.0.1:{stack.stack.ports['web']}"


def sign_in(
    page: Any, stack: RunningStack, email: str, password: str, lands_on: str = "/inbox"
) -> None:
    page.goto(workspace(stack) + "/")
    page.click("a[href='/auth/sign-in']")
    page.wait_for_selector("#email")
    screenshot(page, "sign-in")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{workspace(stack)}{lands_on}*")


def demo_person(
    chromium: Any, stack: RunningStack, role: str, **options: Any
) -> tuple[Any, Any, Recorder]:
    """A fresh browser context signed in as the demo person of `role`, its requests recorded."""
    context = chromium.new_context(**options)
    page = context.new_page()
    recorder = Recorder()
    page.on("request", recorder)
    email, _org = DEMO_USERS[role]
    sign_in(
        page,
        stack,
        email,
        DEMO_USER_PASSWORD,
        lands_on="/send" if role == "host_office" else "/inbox",
    )
    return context, page, recorder


def import_demo_key(page: Any, stack: RunningStack, org: object = HEALTH_PROVIDER_ORG) -> Path:
    """Import a demo organisation's JWK file on the Keys page (read by the browser only)."""
    key_file = stack.workdir / DEMO_KEYS_DIR / f"{org}.jwk"
    page.goto(workspace(stack) + "/keys")
    page.set_input_files("#key-file", str(key_file))
    page.wait_for_selector("#browser-keys-list li")
    return key_file


def check_page(page: Any, name: str) -> None:
    """Lang attribute, a label for every field, no serious axe violation, at most 100 KB."""
    assert page.get_attribute("html", "lang") in ("en", "fr")
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
            .filter(field => field.labels.length === 0 && !field.getAttribute('aria-label'))
            .map(field => field.id || field.name)"""
    )
    assert unlabelled == [], f"{name}: fields without a label"
    # Evaluated over the DevTools protocol: the page's CSP (scripts from 'self') stays in force.
    page.evaluate(AXE_SOURCE)
    violations = page.evaluate(
        "async () => (await axe.run(document)).violations"
        ".filter(v => v.impact === 'serious' || v.impact === 'critical').map(v => v.id)"
    )
    assert violations == [], f"{name}: {violations}"
    weight = len(gzip.compress(page.content().encode()))
    assert weight <= PAGE_LIMIT_BYTES, f"{name} weighs {weight} bytes compressed"
    screenshot(page, name)
    if os.environ.get("REFEX_SCREENSHOTS"):
        print(f"page weight {name}: {weight} bytes gzip")


def screenshot(page: Any, name: str) -> None:
    """With REFEX_SCREENSHOTS=1, keep the page for docs/screenshots/ (README links them)."""
    if os.environ.get("REFEX_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def create_provider_user(stack: RunningStack, email: str, password: str) -> None:
    """A second provider organisation's person, made with `refex admin create-user`."""
    env = {**stack.stack.env, "WEB_TEST_PASSWORD": password}
    subprocess.run(
        [sys.executable, "-m", "services.cli", "admin", "create-user", "--org",
         str(MENTAL_HEALTH_ORG), "--roles", "provider", "--email", email, "--name", "Second",
         "--password-env", "WEB_TEST_PASSWORD"],
        cwd=stack.workdir, env=env, check=True, capture_output=True,
    )  # fmt: skip


class TestProviderJourney:
    def test_the_provider_decrypts_in_the_browser_and_answers_and_nothing_leaks(
        self, chromium: Any, running_stack: RunningStack, host: RefexClient
    ) -> None:
        given_name = f"Nameless-{secrets.token_hex(6)}"
        referral = consent_and_refer(host, f"web-{secrets.token_hex(8)}", given_name)
        context, page, recorder = demo_person(chromium, running_stack, "provider", locale="en-GB")
        key_file = import_demo_key(page, running_stack)
        private_d = orjson.loads(key_file.read_bytes())["d"]
        check_page(page, "keys")
        page.goto(workspace(running_stack) + "/inbox")
        check_page(page, "inbox")
        page.click(f"a[href='/referrals/{referral['id']}']")
        page.wait_for_selector("#casefile[data-decrypted=true]")
        assert given_name in page.inner_text("#casefile-body")
        check_page(page, "referral")

        page.click("form.move:has(input[value=received]) button")
        page.wait_for_selector("p.notice")
        page.click("form.move:has(input[value=accepted]) button")
        page.wait_for_selector("p.notice")
        assert host.get(f"referrals/{referral['id']}")["status"] == "accepted"

        sent = recorder.bodies()
        assert private_d.encode() not in sent
        assert given_name.encode() not in sent
        posts = [url for url, body in recorder.sent if body]
        assert any(url.endswith("/status") for url in posts), "the answers were sent"
        context.close()

    def test_the_provider_filters_starts_completes_and_rejects_with_reasons(
        self, chromium: Any, running_stack: RunningStack, host: RefexClient
    ) -> None:
        kept = consent_and_refer(host, f"web-{secrets.token_hex(8)}", "Kept")
        refused = consent_and_refer(host, f"web-{secrets.token_hex(8)}", "Refused")
        context, page, _recorder = demo_person(chromium, running_stack, "provider")
        base = workspace(running_stack)

        page.goto(f"{base}/referrals/{refused['id']}")
        page.select_option("#reason-rejected", "no-capacity")
        page.click("form.move:has(input[value=rejected]) button")
        page.wait_for_selector("p.notice")
        for move in ("accepted", "in-progress"):
            page.goto(f"{base}/referrals/{kept['id']}")
            page.click(f"form.move:has(input[value={move}]) button")
            page.wait_for_selector("p.notice")
        page.select_option("#outcome", "got-help")
        page.fill("#score", "5")
        page.click("form.move:has(input[value=completed]) button")
        page.wait_for_selector("p.notice")
        done = host.get(f"referrals/{kept['id']}")
        assert (done["status"], done["outcome"], done["feedback_score"]) == (
            "completed",
            "got-help",
            5,
        )
        rejected = host.get(f"referrals/{refused['id']}")
        assert (rejected["status"], rejected["status_reason"]) == ("rejected", "no-capacity")

        page.goto(f"{base}/inbox")
        page.select_option("#f-status", "rejected")  # htmx swaps the rows, the URL follows
        page.wait_for_url("**status=rejected**")
        page.locator(f"a[href='/referrals/{kept['id']}']").wait_for(state="detached")
        assert page.locator(f"a[href='/referrals/{refused['id']}']").count() == 1
        context.close()

    def test_a_rejection_without_a_reason_is_explained_and_changes_nothing(
        self, chromium: Any, running_stack: RunningStack, host: RefexClient
    ) -> None:
        referral = consent_and_refer(host, f"web-{secrets.token_hex(8)}", "Unchanged")
        context, page, _recorder = demo_person(chromium, running_stack, "provider")
        page.goto(f"{workspace(running_stack)}/referrals/{referral['id']}")
        # The browser would insist on the reason; a hand-made request gets the API's answer.
        page.evaluate("document.querySelector('#reason-rejected').removeAttribute('required')")
        page.click("form.move:has(input[value=rejected]) button")
        page.wait_for_selector("p.problem")
        assert host.get(f"referrals/{referral['id']}")["status"] == "requested"
        context.close()

    def test_a_key_generated_in_the_browser_is_registered_and_opens_new_referrals(
        self, chromium: Any, running_stack: RunningStack, host: RefexClient
    ) -> None:
        context, page, recorder = demo_person(chromium, running_stack, "provider")
        page.goto(workspace(running_stack) + "/keys")
        page.click("#generate-key")
        page.wait_for_selector("#browser-keys-list li")
        page.locator("#browser-keys-status", has_text="registered").wait_for()
        kid = page.inner_text("#browser-keys-list li code")
        jwks = host.get(f"directory/organisations/{HEALTH_PROVIDER_ORG}/jwks")
        assert kid in {key["kid"] for key in jwks["keys"]}
        (registration,) = [body for url, body in recorder.sent if url.endswith("/keys") and body]
        assert set(orjson.loads(registration)) == {"kty", "crv", "x", "y", "kid", "use", "alg"}

        given_name = f"Generated-{secrets.token_hex(6)}"
        referral = consent_and_refer(host, f"web-{secrets.token_hex(8)}", given_name)
        assert kid in {entry["kid"] for entry in referral["encrypted_to"]}
        page.goto(f"{workspace(running_stack)}/referrals/{referral['id']}")
        page.wait_for_selector("#casefile[data-decrypted=true]")
        assert given_name in page.inner_text("#casefile-body")
        assert given_name.encode() not in recorder.bodies()
        context.close()

    def test_another_providers_person_sees_none_of_the_referrals(
        self, chromium: Any, running_stack: RunningStack, host: RefexClient
    ) -> None:
        referral = consent_and_refer(host, f"web-{secrets.token_hex(8)}", "Hidden")
        email = f"second-{secrets.token_hex(4)}@provider.example"
        password = secrets.token_urlsafe(18)
        create_provider_user(running_stack, email, password)
        context = chromium.new_context()
        page = context.new_page()

        sign_in(page, running_stack, email, password)
        assert f"/referrals/{referral['id']}" not in page.content()
        answer = page.goto(f"{workspace(running_stack)}/referrals/{referral['id']}")
        assert answer is not None and answer.status == 404
        context.close()

    def test_a_person_signed_out_reaches_no_inbox(
        self, chromium: Any, running_stack: RunningStack
    ) -> None:
        context, page, _recorder = demo_person(chromium, running_stack, "provider", locale="fr-FR")
        page.click("form[action='/auth/sign-out'] button")
        page.wait_for_url(f"{workspace(running_stack)}/")
        assert page.get_attribute("html", "lang") == "fr"
        page.goto(f"{workspace(running_stack)}/inbox")
        assert page.url == f"{workspace(running_stack)}/"
        assert "Se connecter" in page.content()
        context.close()


class TestReturnOffice:
    def test_the_office_records_consent_previews_seals_and_sends_once(
        self, chromium: Any, running_stack: RunningStack, host: RefexClient, tmp_path: Path
    ) -> None:
        subject = f"web-{secrets.token_hex(8)}"
        given_name, phone = f"Sealed-{secrets.token_hex(6)}", "+234 803 555 0199"
        signed_form = tmp_path / "consent.pdf"
        signed_form.write_bytes(b"%PDF-1.4 signed consent " + secrets.token_bytes(16))
        before = len(host.get("referrals", box="sent", limit=200)["items"])
        context, page, recorder = demo_person(chromium, running_stack, "host_office")

        page.set_input_files("#consent-file", str(signed_form))
        expect(page.locator("#c-hash")).to_have_value(re.compile(r"^[0-9a-f]{64}$"))
        page.fill("#c-subject", subject)
        page.select_option("#c-grantee", str(HEALTH_PROVIDER_ORG))
        page.check("[id='cc-identity.basic']")
        until = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
        page.fill("#c-until", until)
        page.click("form[action='/consents'] button")
        page.wait_for_selector("p.notice")
        check_page(page, "send")

        page.select_option("#r-service", str(DEMO_HEALTH_SERVICE))
        page.fill("#r-subject", subject)
        page.check("[id='rc-identity.basic']")
        page.check("[id='rc-contact']")
        page.fill("#cf-given", given_name)
        page.fill("#cf-phone", phone)
        page.locator("#preview-withheld li", has_text="contact").wait_for()
        assert page.locator("#preview-shared li", has_text="identity.basic").count() == 1
        screenshot(page, "send")
        page.dblclick("#send")
        page.locator("#referral[data-sent]").wait_for()
        sent_id = page.get_attribute("#referral", "data-sent")

        sent = host.get("referrals", box="sent", limit=200)["items"]
        assert len(sent) == before + 1, "a double click sends one referral"
        referral = host.get(f"referrals/{sent_id}")
        assert referral["payload_mode"] == "sealed"
        assert referral["shared_categories"] == ["identity.basic"]
        assert {w["category"] for w in referral["withheld"]} >= {"contact"}
        page.goto(workspace(running_stack) + "/sent")
        assert page.locator(f"a[href='/referrals/{sent_id}']").count() == 1
        check_page(page, "sent")
        bodies = recorder.bodies()
        assert given_name.encode() not in bodies and phone.encode() not in bodies
        assert signed_form.read_bytes() not in bodies
        context.close()

        provider, page, _recorder = demo_person(chromium, running_stack, "provider")
        import_demo_key(page, running_stack)
        page.goto(f"{workspace(running_stack)}/referrals/{sent_id}")
        page.wait_for_selector("#casefile[data-decrypted=true]")
        assert given_name in page.inner_text("#casefile-body")
        assert phone not in page.inner_text("#casefile-body")
        provider.close()


def write_note(page: Any, note: str) -> None:
    page.locator("#note-form:not([hidden])").wait_for()
    page.fill("#note-text", note)
    page.click("#note-send")


class TestNotes:
    def test_a_note_the_provider_writes_is_read_by_the_office_and_never_sent_in_clear(
        self, chromium: Any, running_stack: RunningStack, host: RefexClient
    ) -> None:
        referral = consent_and_refer(host, f"web-{secrets.token_hex(8)}", "Noted")
        page_of = f"{workspace(running_stack)}/referrals/{referral['id']}"
        note = f"Appointment booked for Tuesday, ask for Dr Diallo {secrets.token_hex(6)}"
        provider, page, provider_sent = demo_person(chromium, running_stack, "provider")
        import_demo_key(page, running_stack)
        page.goto(page_of)
        page.locator("#notes-list", has_text="No note yet").wait_for()
        write_note(page, note)
        page.wait_for_url("**noted=1**")
        page.locator("#notes[data-opened='1']").wait_for()
        assert note in page.inner_text("#notes-list")
        assert "Your organisation" in page.inner_text("#notes-list")
        check_page(page, "referral-notes")
        provider.close()

        office, page, office_sent = demo_person(chromium, running_stack, "host_office")
        page.goto(page_of)
        page.locator("#notes-list li", has_text="no key of your organisation").wait_for()
        assert note not in page.inner_text("#notes-list")
        import_demo_key(page, running_stack, HOST_OFFICE_ORG)
        page.goto(page_of)
        page.locator("#notes[data-opened='1']").wait_for()
        assert note in page.inner_text("#notes-list")
        assert "The provider" in page.inner_text("#notes-list")
        office.close()

        stored = host.get(f"referrals/{referral['id']}/notes", include="payload")
        assert [item["author_org_id"] for item in stored] == [str(HEALTH_PROVIDER_ORG)]
        keys = host.get(f"referrals/{referral['id']}/keys")
        sealed_to = {entry["header"]["kid"] for entry in stored[0]["body"]["recipients"]}
        assert sealed_to == {key["jwk"]["kid"] for key in keys["keys"]}, "both parties' keys"
        (posted,) = [body for url, body in provider_sent.sent if url.endswith("/notes")]
        assert set(orjson.loads(posted)) == {"sealed", "key_set_fingerprint"}
        for recorder in (provider_sent, office_sent):
            assert note.encode() not in recorder.bodies()
            assert all(note not in unquote_plus(url) for url, _body in recorder.sent)

    def test_a_note_a_partner_system_sent_as_text_is_opened_in_the_browser(
        self, chromium: Any, running_stack: RunningStack, host: RefexClient
    ) -> None:
        referral = consent_and_refer(host, f"web-{secrets.token_hex(8)}", "FromApi")
        note = f"Called the family, they expect you {secrets.token_hex(6)}"
        host.post(f"referrals/{referral['id']}/notes", {"text": note})  # refex encrypts this one
        context, page, recorder = demo_person(chromium, running_stack, "provider")
        import_demo_key(page, running_stack)
        page.goto(f"{workspace(running_stack)}/referrals/{referral['id']}")
        page.locator("#notes[data-opened='1']").wait_for()
        assert note in page.inner_text("#notes-list")
        assert "The sending office" in page.inner_text("#notes-list")
        assert note.encode() not in recorder.bodies()
        context.close()

    def test_a_refused_note_shows_the_apis_problem_in_french_and_stores_nothing(
        self, chromium: Any, running_stack: RunningStack, host: RefexClient
    ) -> None:
        referral = consent_and_refer(host, f"web-{secrets.token_hex(8)}", "Closed")
        host.post(f"referrals/{referral['id']}/status", {"status": "cancelled", "reason": "other"})
        context, page, recorder = demo_person(chromium, running_stack, "provider", locale="fr-FR")
        page.goto(f"{workspace(running_stack)}/referrals/{referral['id']}")
        note = f"Too late {secrets.token_hex(6)}"
        write_note(page, note)
        problem = page.locator("#note-status.problem[role=alert]")
        problem.wait_for()
        assert "Cette orientation est close" in problem.inner_text()
        assert page.input_value("#note-text") == note, "the text stays in the browser to keep"
        assert host.get(f"referrals/{referral['id']}/notes") == []
        assert note.encode() not in recorder.bodies()
        context.close()

    def test_a_note_longer_than_the_cap_is_refused_with_the_apis_problem(
        self, chromium: Any, running_stack: RunningStack, host: RefexClient
    ) -> None:
        referral = consent_and_refer(host, f"web-{secrets.token_hex(8)}", "Long")
        context, page, _recorder = demo_person(chromium, running_stack, "provider")
        page.goto(f"{workspace(running_stack)}/referrals/{referral['id']}")
        write_note(page, "long " * 18_000)  # 90,000 characters; the demo's cap is 20,000
        problem = page.locator("#note-status.problem[role=alert]")
        problem.wait_for()
        assert "at most 20000 characters" in problem.inner_text()
        assert host.get(f"referrals/{referral['id']}/notes") == []
        context.close()

    def test_a_key_registered_while_the_note_is_sent_gets_the_note_sealed_again(
        self, chromium: Any, running_stack: RunningStack, host: RefexClient
    ) -> None:
        referral = consent_and_refer(host, f"web-{secrets.token_hex(8)}", "Rotated")
        context, page, recorder = demo_person(chromium, running_stack, "provider")
        page.goto(f"{workspace(running_stack)}/referrals/{referral['id']}")
        new_key = public_part(generate_encryption_key(f"office-{secrets.token_hex(6)}"))
        registered: list[Any] = []

        def register_then_send(route: Any) -> None:
            # The office adds a key after the browser sealed the note, before the note arrives.
            if not registered:
                path = f"directory/organisations/{HOST_OFFICE_ORG}/keys"
                registered.append(host.post(path, {"jwk": new_key}))
            route.continue_()

        page.route("**/notes", register_then_send)
        write_note(page, f"Sealed twice {secrets.token_hex(6)}")
        page.wait_for_url("**noted=1**")
        assert len([url for url, _body in recorder.sent if url.endswith("/notes")]) == 2
        (stored,) = host.get(f"referrals/{referral['id']}/notes", include="payload")
        assert new_key["kid"] in {entry["header"]["kid"] for entry in stored["body"]["recipients"]}
        context.close()

    def test_a_note_in_clear_text_is_refused_by_the_workspace(
        self, chromium: Any, running_stack: RunningStack, host: RefexClient
    ) -> None:
        referral = consent_and_refer(host, f"web-{secrets.token_hex(8)}", "Plain")
        context, page, _recorder = demo_person(chromium, running_stack, "provider")
        page.goto(f"{workspace(running_stack)}/referrals/{referral['id']}")
        csrf = page.get_attribute("#notes", "data-csrf")
        status = page.evaluate(
            """async ([id, csrf]) => (await fetch(`/referrals/${id}/notes`, {method: "POST",
                headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
                body: JSON.stringify({text: "in clear"})})).status""",
            [referral["id"], csrf],
        )
        assert status == 422
        assert host.get(f"referrals/{referral['id']}/notes") == []
        context.close()
