"""The SDK against a real stack: seal and send, inbox, open, status changes, notes, webhooks."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, get_type_hints

import httpx
import pytest
from jwcrypto import jwe, jwk

from proof.harness import WebhookReceiver
from refex_client import (
    SIGNATURE_HEADER,
    RefexClient,
    RefexError,
    WebhookSignatureError,
    open_note,
    open_referral,
    verify_webhook,
)
from refex_client.models import MODELS_IN_OPENAPI
from shared.demo import (
    DEMO_HEALTH_SERVICE,
    DEMO_MENTAL_HEALTH_SERVICE,
    HEALTH_PROVIDER_ORG,
    HOST_OFFICE_ORG,
    MENTAL_HEALTH_ORG,
)
from tests.system.conftest import RunningStack

pytestmark = pytest.mark.system
CASEFILE = {
    "identity_basic": {"given_name": "Amina", "family_name": "Bello"},
    "contact": {"phone": "+234 803 555 0101"},
    "health_physical": {"conditions": ["type 2 diabetes"]},
    "health_mental": {"psychosocial_needs": ["trauma support"]},
}
REQUESTED = ["identity.basic", "contact", "health.physical", "health.mental"]


def client(stack: RunningStack, role: str) -> RefexClient:
    creds = json.loads((stack.workdir / "var/demo/clients.json").read_bytes())[role]
    return RefexClient(stack.base_url, creds["client_id"], creds["client_secret"])


def private_key(stack: RunningStack, org: object) -> dict[str, Any]:
    key: dict[str, Any] = json.loads((stack.workdir / f"var/demo/keys/{org}.jwk").read_bytes())
    return key


@pytest.fixture
def host(running_stack: RunningStack) -> Iterator[RefexClient]:
    with client(running_stack, "host_office") as sdk:
        yield sdk


@pytest.fixture
def provider(running_stack: RunningStack) -> Iterator[RefexClient]:
    with client(running_stack, "provider") as sdk:
        yield sdk


def consented_subject(host: RefexClient) -> str:
    subject = f"hof-sdk-{secrets.token_hex(8)}"
    until = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    host.request("POST", "consents", json_body={
        "subject_ref": subject, "grantor": "self",
        "grantee": {"kind": "organisation", "org_id": str(HEALTH_PROVIDER_ORG)},
        "purpose": "referral", "categories": REQUESTED, "valid_until": until,
        "language": "en", "evidence": {"method": "written", "form_sha256": "b" * 64}})  # fmt: skip
    return subject


def send(host: RefexClient) -> dict[str, Any]:
    sent = host.send_sealed(
        casefile=CASEFILE,
        service_id=str(DEMO_HEALTH_SERVICE),
        subject_ref=consented_subject(host),
        requested_categories=REQUESTED,
    )
    return dict(sent)


class TestSealedJourney:
    def test_the_sdk_seals_and_the_provider_opens_only_what_was_permitted(
        self, running_stack: RunningStack, host: RefexClient, provider: RefexClient
    ) -> None:
        sent = send(host)
        assert sent["payload_mode"] == "sealed"
        assert "health.mental" not in sent["shared_categories"]  # not in the demo SOP
        listed = next(r for r in provider.inbox() if r["id"] == sent["id"])
        assert listed.get("payload") is None  # lists carry metadata; the single read the payload
        received = provider.referral(listed["id"])
        casefile = open_referral(received, private_key(running_stack, HEALTH_PROVIDER_ORG))
        assert casefile["identity_basic"] == CASEFILE["identity_basic"]
        assert "health_mental" not in casefile
        own = open_referral(host.referral(sent["id"]), private_key(running_stack, HOST_OFFICE_ORG))
        assert own == casefile

    def test_a_section_opens_with_jwcrypto_used_directly(
        self, running_stack: RunningStack, host: RefexClient, provider: RefexClient
    ) -> None:
        sent = send(host)
        token = provider.referral(sent["id"])["payload"]["sections"]["contact"]  # type: ignore[index]
        reader = jwe.JWE()
        reader.deserialize(
            json.dumps(token), key=jwk.JWK(**private_key(running_stack, HEALTH_PROVIDER_ORG))
        )
        assert json.loads(reader.payload) == CASEFILE["contact"]

    def test_status_changes_and_sealed_notes_go_both_ways(
        self, running_stack: RunningStack, host: RefexClient, provider: RefexClient
    ) -> None:
        sent = send(host)
        assert provider.set_status(sent["id"], "received")["status"] == "received"
        assert provider.set_status(sent["id"], "accepted")["status"] == "accepted"
        provider.add_note(sent["id"], "First appointment on Monday")
        (note,) = host.notes(sent["id"])
        assert open_note(note, private_key(running_stack, HOST_OFFICE_ORG)) == (
            "First appointment on Monday"
        )

    def test_a_plain_note_on_a_sealed_referral_is_refused_with_a_problem(
        self, host: RefexClient, provider: RefexClient
    ) -> None:
        sent = send(host)
        with pytest.raises(RefexError) as refused:
            provider.request("POST", f"referrals/{sent['id']}/notes", json_body={"text": "x"})
        assert refused.value.status == 422
        assert refused.value.slug == "sealed-note-required"

    def test_a_provider_previews_only_under_an_agreement_naming_it(
        self, provider: RefexClient
    ) -> None:
        # The clinic holds no agreement as the sender to its own service.
        with pytest.raises(RefexError) as refused:
            provider.preview(
                service_id=str(DEMO_HEALTH_SERVICE),
                subject_ref="hof-sdk-0000000000000000",
                requested_categories=["contact"],
            )
        assert refused.value.status == 422
        assert refused.value.slug == "no-agreement"

    def test_a_provider_passes_a_case_on_sealed_and_the_sender_sees_where_it_went(
        self, running_stack: RunningStack, host: RefexClient, provider: RefexClient
    ) -> None:
        first = send(host)
        casefile = open_referral(
            provider.referral(first["id"]), private_key(running_stack, HEALTH_PROVIDER_ORG)
        )
        own_subject = f"lrc-sdk-{secrets.token_hex(8)}"
        until = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        provider.request("POST", "consents", json_body={
            "subject_ref": own_subject, "grantor": "self",
            "grantee": {"kind": "organisation", "org_id": str(MENTAL_HEALTH_ORG)},
            "purpose": "referral", "categories": ["identity.basic", "contact"],
            "valid_until": until, "language": "en",
            "evidence": {"method": "written", "form_sha256": "c" * 64}})  # fmt: skip
        onward = provider.pass_on_sealed(
            first["id"],
            casefile=casefile,
            service_id=str(DEMO_MENTAL_HEALTH_SERVICE),
            subject_ref=own_subject,
            requested_categories=["identity.basic", "contact"],
        )
        assert onward["payload_mode"] == "sealed" and onward.get("based_on") == first["id"]
        opened = open_referral(onward, private_key(running_stack, MENTAL_HEALTH_ORG))
        assert opened["contact"] == CASEFILE["contact"] and "health_physical" not in opened
        seen = host.referral(first["id"])
        assert seen["outcome"] == "referred-elsewhere"
        passed_on = seen.get("passed_on")
        assert passed_on is not None and passed_on["organisation_id"] == str(MENTAL_HEALTH_ORG)


class TestWebhooks:
    def test_a_real_delivery_verifies_and_an_altered_one_does_not(
        self, running_stack: RunningStack, host: RefexClient, provider: RefexClient
    ) -> None:
        receiver = WebhookReceiver()
        receiver.start()
        try:
            provider.request(
                "PATCH",
                f"directory/organisations/{HEALTH_PROVIDER_ORG}",
                json_body={"webhook_url": receiver.url},
            )
            sent = send(host)
            body, headers = wait_for_delivery(receiver, sent["id"])
        finally:
            receiver.stop()
        signature = next(v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER.lower())
        jwks = provider.webhook_jwks()
        verify_webhook(body, signature, jwks)
        with pytest.raises(WebhookSignatureError):
            verify_webhook(body.replace(b"requested", b"cancelled"), signature, jwks)


def wait_for_delivery(
    receiver: WebhookReceiver, referral_id: str, timeout_s: float = 60
) -> tuple[bytes, dict[str, str]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for body, headers in zip(receiver.bodies, receiver.headers, strict=True):
            if referral_id.encode() in body:
                return body, headers
        time.sleep(0.2)
    raise AssertionError("no webhook delivery arrived")


class TestModelsMatchOpenApi:
    def test_every_typed_model_names_only_fields_of_its_openapi_schema(
        self, running_stack: RunningStack
    ) -> None:
        spec = openapi(running_stack.base_url)
        schemas = spec["components"]["schemas"]
        for name, model in MODELS_IN_OPENAPI.items():
            properties = schemas[name]["properties"]
            fields = set(get_type_hints(model))
            assert fields <= set(properties), (name, fields - set(properties))
            required = set(schemas[name].get("required", []))
            assert required == required_keys(model), name
            # A field the server may leave out must not be required in the SDK's model.
            assert set(properties) - required >= fields - required_keys(model), name


def required_keys(model: type) -> set[str]:
    return set(getattr(model, "__required_keys__", set()))


def openapi(base_url: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        spec: dict[str, Any] = httpx.get(f"{base_url}/openapi.json", trust_env=False).json()
        if "ReferralPreview" in spec.get("components", {}).get("schemas", {}):
            return spec
        assert time.monotonic() < deadline, "the gateway's OpenAPI never listed the referral API"
        time.sleep(0.5)
