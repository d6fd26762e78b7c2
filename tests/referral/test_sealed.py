"""Sealed referrals: the sender encrypts each section, refex checks envelopes and never decrypts."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import create_async_engine

from services.directory.models import Agreement
from services.referral import creation
from services.referral.models import AuditEvent, Referral, ReferralNote
from shared.casefile import SECTION_OF
from shared.client import open_note, open_payload
from shared.clock import utcnow
from shared.crypto import encrypt_for, generate_encryption_key, public_part
from shared.demo import (
    DEMO_HEALTH_SERVICE,
    HEALTH_PROVIDER_ORG,
    HOST_OFFICE_ORG,
    PLATFORM_ORG,
    SECOND_HOST_OFFICE_ORG,
)
from shared.vocabulary import DataCategory
from tests.directory.conftest import SeededDatabases
from tests.referral.conftest import CASEFILE, SUBJECT, Exchange, record_consent

REQUESTED = ["identity.basic", "contact", "health.physical", "health.mental"]
PERMITTED = ["contact", "health.physical", "identity.basic"]


@pytest.fixture
def shared_directory(seeded_databases: SeededDatabases) -> Callable[[str], str]:
    """A fresh directory per test: these tests rotate keys and change agreements."""
    urls: dict[str, str] = {}

    def url_for(backend: str) -> str:
        return urls.setdefault(backend, seeded_databases.fresh(backend))

    return url_for


def request_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "service_id": str(DEMO_HEALTH_SERVICE),
        "subject_ref": SUBJECT,
        "requested_categories": REQUESTED,
    }
    body.update(overrides)
    return body


async def preview(exchange: Exchange, **overrides: Any) -> dict[str, Any]:
    response = await exchange.referral.post(
        "/referrals/preview",
        json=request_body(**overrides),
        headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def seal(
    plan: dict[str, Any],
    categories: list[str] | None = None,
    *,
    keys: list[dict[str, Any]] | None = None,
    aad_of: Callable[[str], str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Encrypt each section of CASEFILE for `categories` as the preview says (or as told)."""
    keys = keys if keys is not None else [key["jwk"] for key in plan["keys"]]
    sections = {}
    for category in categories if categories is not None else plan["permitted_categories"]:
        section = CASEFILE[SECTION_OF[DataCategory(category)]]
        aad = aad_of(category) if aad_of else plan["aad"][category]
        sections[category] = encrypt_for(orjson.dumps(section), keys, aad=aad.encode())
    return sections


async def send_sealed(
    exchange: Exchange,
    plan: dict[str, Any],
    sections: dict[str, Any],
    headers: dict[str, str] | None = None,
    **overrides: Any,
) -> Any:
    body = request_body(reservation=plan["reservation"], sections=sections, **overrides)
    return await exchange.referral.post(
        "/referrals/sealed",
        json=body,
        headers={**exchange.as_role("host_office", HOST_OFFICE_ORG), **(headers or {})},
    )


async def stored(exchange: Exchange, model: Any = Referral) -> int:
    async with exchange.referral_app.state.db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def all_stored_text(exchange: Exchange) -> str:
    chunks = []
    async with exchange.referral_app.state.db.engine.connect() as connection:
        for table in ("referral", "referral_note", "audit_event", "outbox_event"):
            rows = (await connection.execute(text(f"SELECT * FROM {table}"))).all()
            chunks.extend(str(tuple(row)) for row in rows)
    return "\n".join(chunks)


async def require_sealed(shared_directory: Callable[[str], str], backend: str) -> None:
    """Make every agreement of the test's directory require sealed referrals."""
    engine = create_async_engine(shared_directory(backend))
    async with engine.begin() as connection:
        await connection.execute(update(Agreement).values(sealed_required=True))
    await engine.dispose()


async def rotate_provider_key(exchange: Exchange) -> None:
    """The provider registers a new key, as it would when rotating."""
    new_key = public_part(generate_encryption_key("clinic-rotated-enc"))
    response = await exchange.directory.post(
        f"/organisations/{HEALTH_PROVIDER_ORG}/keys",
        json={"jwk": new_key},
        headers=exchange.as_role("provider", HEALTH_PROVIDER_ORG),
    )
    assert response.status_code == 201, response.text


def problem_type(response: Any) -> str:
    return str(response.json()["type"]).rsplit(":", 1)[-1]


NOT_IN_SOP = {
    "category": "health.mental",
    "reason": "not_in_sop",
    "explanation": "The agreement (SOP) with this provider does not permit sharing this category "
    "for this service.",
}


class TestPreview:
    async def test_lists_permitted_categories_keys_and_a_reserved_id(
        self, exchange: Exchange
    ) -> None:
        await record_consent(exchange, REQUESTED)
        plan = await preview(exchange)
        assert plan["permitted_categories"] == PERMITTED
        assert plan["withheld"] == [NOT_IN_SOP]
        parties = {(key["party"], key["org_id"]) for key in plan["keys"]}
        assert parties == {
            ("recipient", str(HEALTH_PROVIDER_ORG)),
            ("sender", str(HOST_OFFICE_ORG)),
        }
        assert all("d" not in key["jwk"] for key in plan["keys"])
        assert plan["aad"]["contact"] == f"refex:referral:{plan['referral_id']}:section:contact"
        assert plan["sealed_required"] is False
        assert await stored(exchange) == 0

    async def test_without_consent_the_preview_says_nothing_may_be_sent(
        self, exchange: Exchange
    ) -> None:
        response = await exchange.referral.post(
            "/referrals/preview",
            json=request_body(),
            headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
        )
        assert response.status_code == 422
        assert problem_type(response) == "nothing-to-share"

    async def test_a_provider_previews_only_under_an_agreement_naming_it_as_sender(
        self, exchange: Exchange
    ) -> None:
        # The clinic holds no agreement as the sender to its own service.
        response = await exchange.referral.post(
            "/referrals/preview",
            json=request_body(),
            headers=exchange.as_role("provider", HEALTH_PROVIDER_ORG),
        )
        assert response.status_code == 422
        assert problem_type(response) == "no-agreement"
        clinician = await exchange.referral.post(
            "/referrals/preview",
            json=request_body(),
            headers=exchange.as_role("mental_health_professional", HEALTH_PROVIDER_ORG),
        )
        assert clinician.status_code == 403


class TestSealedReferral:
    async def test_sections_are_stored_as_sent_and_both_parties_read_them(
        self, exchange: Exchange
    ) -> None:
        await record_consent(exchange, REQUESTED)
        plan = await preview(exchange)
        sections = seal(plan)
        response = await send_sealed(exchange, plan, sections)
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["id"] == plan["referral_id"]
        assert created["payload_mode"] == "sealed"
        assert created["shared_categories"] == PERMITTED
        assert NOT_IN_SOP in created["withheld"]
        assert created["payload"] == {"sections": sections}
        for org in (HEALTH_PROVIDER_ORG, HOST_OFFICE_ORG):
            casefile = open_payload(created, exchange.private_key(org))
            assert casefile["identity_basic"] == CASEFILE["identity_basic"]
            assert set(casefile) == {
                "schema_version",
                "identity_basic",
                "contact",
                "health_physical",
            }
        assert "CANARY" not in await all_stored_text(exchange)
        assert SUBJECT not in await all_stored_text(exchange)

    async def test_the_mode_is_in_the_audit_trail_and_the_fhir_view(
        self, exchange: Exchange
    ) -> None:
        await record_consent(exchange, REQUESTED)
        plan = await preview(exchange)
        created = (await send_sealed(exchange, plan, seal(plan))).json()
        async with exchange.referral_app.state.db.sessionmaker() as session:
            audit = await session.scalar(
                select(AuditEvent).where(AuditEvent.action == "referral.created")
            )
        assert audit is not None and audit.details["payload_mode"] == "sealed"
        fhir = await exchange.referral.get(
            f"/referrals/{created['id']}/fhir",
            headers=exchange.as_role("provider", HEALTH_PROVIDER_ORG),
        )
        tags = fhir.json()["entry"][0]["resource"]["meta"]["tag"]
        assert tags == [{"system": "urn:refex:payload-mode", "code": "sealed"}]

    async def test_a_subset_of_the_permitted_sections_may_be_sent(self, exchange: Exchange) -> None:
        await record_consent(exchange, REQUESTED)
        plan = await preview(exchange)
        response = await send_sealed(exchange, plan, seal(plan, ["contact"]))
        assert response.status_code == 201, response.text
        assert response.json()["shared_categories"] == ["contact"]

    async def test_a_retry_with_the_same_idempotency_key_returns_the_first_answer(
        self, exchange: Exchange
    ) -> None:
        await record_consent(exchange, REQUESTED)
        plan = await preview(exchange)
        sections = seal(plan)
        key = {"Idempotency-Key": "sealed-retry-0001"}
        first = await send_sealed(exchange, plan, sections, key)
        again = await send_sealed(exchange, plan, sections, key)
        assert first.status_code == again.status_code == 201
        assert again.json()["id"] == first.json()["id"]
        assert await stored(exchange) == 1

    async def test_server_mode_referrals_say_so(self, exchange: Exchange) -> None:
        await record_consent(exchange, REQUESTED)
        response = await exchange.referral.post(
            "/referrals",
            json=request_body(casefile=CASEFILE),
            headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
        )
        assert response.status_code == 201, response.text
        assert response.json()["payload_mode"] == "server"


class TestSealedRefusals:
    async def test_a_section_labelled_with_a_category_outside_the_sop_is_refused(
        self, exchange: Exchange
    ) -> None:
        await record_consent(exchange, REQUESTED)
        plan = await preview(exchange)
        sections = seal(plan) | seal(plan, ["health.mental"], aad_of=lambda c: f"x:{c}")
        response = await send_sealed(exchange, plan, sections)
        assert response.status_code == 422
        assert problem_type(response) == "section-not-permitted"
        assert response.json()["sections"] == [
            {"category": "health.mental", "reason": "not_in_sop"}
        ]
        assert await stored(exchange) == 0

    async def test_a_section_that_was_not_requested_is_refused(self, exchange: Exchange) -> None:
        await record_consent(exchange, REQUESTED)
        plan = await preview(exchange)
        sections = seal(plan) | seal(plan, ["protection"], aad_of=lambda c: f"x:{c}")
        response = await send_sealed(exchange, plan, sections)
        assert response.status_code == 422
        assert response.json()["sections"] == [
            {"category": "protection", "reason": "not_requested"}
        ]
        assert await stored(exchange) == 0

    async def test_a_rotated_provider_key_refuses_the_send_and_says_fetch_the_preview_again(
        self, exchange: Exchange
    ) -> None:
        await record_consent(exchange, REQUESTED)
        plan = await preview(exchange)
        await rotate_provider_key(exchange)
        response = await send_sealed(exchange, plan, seal(plan))
        assert response.status_code == 409
        assert problem_type(response) == "key-set-changed"
        assert "provider" in response.json()["detail"]
        assert "preview again" in response.json()["detail"]
        assert await stored(exchange) == 0
        fresh = await preview(exchange)
        assert fresh["key_set_fingerprint"] != plan["key_set_fingerprint"]
        assert (await send_sealed(exchange, fresh, seal(fresh))).status_code == 201

    async def test_a_section_missing_a_recipient_key_is_refused(self, exchange: Exchange) -> None:
        await record_consent(exchange, REQUESTED)
        plan = await preview(exchange)
        recipient_only = [key["jwk"] for key in plan["keys"] if key["party"] == "recipient"]
        response = await send_sealed(exchange, plan, seal(plan, keys=recipient_only))
        assert response.status_code == 422
        assert problem_type(response) == "sealed-section-invalid"
        sender_kid = next(k["jwk"]["kid"] for k in plan["keys"] if k["party"] == "sender")
        assert sender_kid in response.json()["detail"]
        assert await stored(exchange) == 0

    async def test_a_section_encrypted_to_a_foreign_key_too_is_refused(
        self, exchange: Exchange
    ) -> None:
        await record_consent(exchange, REQUESTED)
        plan = await preview(exchange)
        foreign = public_part(generate_encryption_key("eavesdropper-key"))
        keys = [key["jwk"] for key in plan["keys"]] + [foreign]
        response = await send_sealed(exchange, plan, seal(plan, keys=keys))
        assert response.status_code == 422
        assert "eavesdropper-key" in response.json()["detail"]
        assert await stored(exchange) == 0

    async def test_a_section_bound_to_another_category_is_refused(self, exchange: Exchange) -> None:
        await record_consent(exchange, REQUESTED)
        plan = await preview(exchange)
        swapped = seal(plan, aad_of=lambda c: plan["aad"]["contact"])
        response = await send_sealed(exchange, plan, swapped)
        assert response.status_code == 422
        assert problem_type(response) == "sealed-section-invalid"
        assert "aad" in response.json()["detail"]
        assert await stored(exchange) == 0

    async def test_clear_text_riding_along_in_a_header_is_refused(self, exchange: Exchange) -> None:
        await record_consent(exchange, REQUESTED)
        plan = await preview(exchange)
        sections = seal(plan)
        sections["contact"]["unprotected"] = {"note": "CANARY-Amina"}
        response = await send_sealed(exchange, plan, sections)
        assert response.status_code == 422
        assert "CANARY" not in response.text
        assert await stored(exchange) == 0

    async def test_a_protected_header_member_beyond_enc_and_cty_is_refused(
        self, exchange: Exchange
    ) -> None:
        await record_consent(exchange, REQUESTED)
        plan = await preview(exchange)
        sections = seal(plan)
        header = {"enc": "A256GCM", "x-name": "CANARY-Amina"}
        sections["contact"]["protected"] = (
            base64.urlsafe_b64encode(orjson.dumps(header)).rstrip(b"=").decode()
        )
        response = await send_sealed(exchange, plan, sections)
        assert response.status_code == 422
        assert problem_type(response) == "sealed-section-invalid"
        assert await stored(exchange) == 0

    async def test_a_reservation_for_another_returnee_is_refused(self, exchange: Exchange) -> None:
        await record_consent(exchange, REQUESTED)
        plan = await preview(exchange)
        response = await send_sealed(
            exchange, plan, seal(plan), subject_ref="hof-2026-0000000000000000"
        )
        assert response.status_code == 422
        assert problem_type(response) == "reservation-invalid"

    async def test_a_forged_reservation_is_refused(self, exchange: Exchange) -> None:
        await record_consent(exchange, REQUESTED)
        plan = await preview(exchange)
        body, _, _ = plan["reservation"].partition(".")
        plan["reservation"] = f"{body}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        response = await send_sealed(exchange, plan, seal(plan))
        assert response.status_code == 422
        assert problem_type(response) == "reservation-invalid"

    async def test_an_expired_reservation_is_refused(
        self, exchange: Exchange, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await record_consent(exchange, REQUESTED)
        plan = await preview(exchange)
        monkeypatch.setattr(creation, "utcnow", lambda: utcnow() + timedelta(hours=1))
        response = await send_sealed(exchange, plan, seal(plan))
        assert response.status_code == 409
        assert problem_type(response) == "reservation-expired"
        assert await stored(exchange) == 0

    async def test_a_used_reservation_is_refused(self, exchange: Exchange) -> None:
        await record_consent(exchange, REQUESTED)
        plan = await preview(exchange)
        assert (await send_sealed(exchange, plan, seal(plan))).status_code == 201
        again = await send_sealed(exchange, plan, seal(plan), {"Idempotency-Key": "another-key-1"})
        assert again.status_code == 409
        assert problem_type(again) == "reservation-used"
        assert await stored(exchange) == 1

    async def test_consent_withdrawn_after_the_preview_refuses_the_send(
        self, exchange: Exchange
    ) -> None:
        consent_id = await record_consent(exchange, REQUESTED)
        plan = await preview(exchange)
        withdrawn = await exchange.consent.post(
            f"/consents/{consent_id}/withdraw",
            json={"reason": "returnee_request"},
            headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
        )
        assert withdrawn.status_code == 200, withdrawn.text
        response = await send_sealed(exchange, plan, seal(plan))
        assert response.status_code == 422
        assert problem_type(response) == "nothing-to-share"
        assert await stored(exchange) == 0


class TestSealedRequired:
    async def test_an_agreement_requiring_sealed_mode_refuses_plain_case_files(
        self, exchange: Exchange, shared_directory: Callable[[str], str], backend: str
    ) -> None:
        await require_sealed(shared_directory, backend)
        await record_consent(exchange, REQUESTED)
        plain = await exchange.referral.post(
            "/referrals",
            json=request_body(casefile=CASEFILE),
            headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
        )
        assert plain.status_code == 422
        assert problem_type(plain) == "sealed-mode-required"
        assert await stored(exchange) == 0
        plan = await preview(exchange)
        assert plan["sealed_required"] is True
        assert (await send_sealed(exchange, plan, seal(plan))).status_code == 201


class TestSealedNotes:
    async def _sealed_referral(self, exchange: Exchange) -> dict[str, Any]:
        await record_consent(exchange, REQUESTED)
        plan = await preview(exchange)
        response = await send_sealed(exchange, plan, seal(plan))
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def _keys(self, exchange: Exchange, referral_id: str) -> dict[str, Any]:
        response = await exchange.referral.get(
            f"/referrals/{referral_id}/keys",
            headers=exchange.as_role("provider", HEALTH_PROVIDER_ORG),
        )
        assert response.status_code == 200, response.text
        keys: dict[str, Any] = response.json()
        return keys

    async def test_a_note_sealed_by_its_writer_is_stored_as_sent(self, exchange: Exchange) -> None:
        referral = await self._sealed_referral(exchange)
        keys = await self._keys(exchange, referral["id"])
        jwe = encrypt_for(
            b"CANARY-appointment booked",
            [key["jwk"] for key in keys["keys"]],
            aad=f"refex:note:{referral['id']}".encode(),
        )
        response = await exchange.referral.post(
            f"/referrals/{referral['id']}/notes",
            json={"sealed": jwe, "key_set_fingerprint": keys["key_set_fingerprint"]},
            headers=exchange.as_role("provider", HEALTH_PROVIDER_ORG),
        )
        assert response.status_code == 201, response.text
        note = response.json()
        assert note["body"] == jwe
        assert open_note(note, exchange.private_key(HOST_OFFICE_ORG)) == "CANARY-appointment booked"
        assert "CANARY" not in await all_stored_text(exchange)

    async def test_a_plain_note_on_a_sealed_referral_is_refused(self, exchange: Exchange) -> None:
        referral = await self._sealed_referral(exchange)
        response = await exchange.referral.post(
            f"/referrals/{referral['id']}/notes",
            json={"text": "CANARY-plain"},
            headers=exchange.as_role("provider", HEALTH_PROVIDER_ORG),
        )
        assert response.status_code == 422
        assert problem_type(response) == "sealed-note-required"
        assert await stored(exchange, ReferralNote) == 0

    async def test_a_note_sealed_to_stale_keys_is_refused(self, exchange: Exchange) -> None:
        referral = await self._sealed_referral(exchange)
        keys = await self._keys(exchange, referral["id"])
        await rotate_provider_key(exchange)
        jwe = encrypt_for(
            b"note",
            [key["jwk"] for key in keys["keys"]],
            aad=f"refex:note:{referral['id']}".encode(),
        )
        response = await exchange.referral.post(
            f"/referrals/{referral['id']}/notes",
            json={"sealed": jwe, "key_set_fingerprint": keys["key_set_fingerprint"]},
            headers=exchange.as_role("provider", HEALTH_PROVIDER_ORG),
        )
        assert response.status_code == 409
        assert problem_type(response) == "key-set-changed"
        assert await stored(exchange, ReferralNote) == 0

    async def test_another_organisation_cannot_read_the_keys(self, exchange: Exchange) -> None:
        referral = await self._sealed_referral(exchange)
        response = await exchange.referral.get(
            f"/referrals/{referral['id']}/keys",
            headers=exchange.as_role("host_office", SECOND_HOST_OFFICE_ORG),
        )
        assert response.status_code == 404


class TestSealedWithdrawal:
    async def test_withdrawal_cancels_a_sealed_referral_and_hides_its_sections(
        self, exchange: Exchange
    ) -> None:
        consent_id = await record_consent(exchange, REQUESTED)
        plan = await preview(exchange)
        created = (await send_sealed(exchange, plan, seal(plan))).json()
        response = await exchange.referral.post(
            "/internal/consent-withdrawals",
            headers=exchange.minter.headers(roles=["service"], org=str(PLATFORM_ORG)),
            json={
                "event_id": str(uuid.uuid4()),
                "consent_id": consent_id,
                "subject_ref": SUBJECT,
                "withdrawn_at": "2026-11-25T10:00:00Z",
            },
        )
        assert response.json()["cancelled_referral_ids"] == [created["id"]]
        read = await exchange.referral.get(
            f"/referrals/{created['id']}", headers=exchange.as_role("provider", HEALTH_PROVIDER_ORG)
        )
        assert read.json()["status_reason"] == "consent-withdrawn"
        assert read.json()["payload"] is None
        assert read.json()["payload_mode"] == "sealed"
