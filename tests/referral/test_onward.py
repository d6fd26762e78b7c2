"""Onward referrals: a provider that cannot serve passes the case on to another provider."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from services.referral.models import AuditEvent, OutboxEvent, Referral
from shared.casefile import SECTION_OF
from shared.client import open_payload
from shared.crypto import encrypt_for
from shared.demo import (
    COORDINATOR_ORG,
    DEMO_HEALTH_SERVICE,
    DEMO_MENTAL_HEALTH_SERVICE,
    HEALTH_PROVIDER_ORG,
    HOST_OFFICE_ORG,
    MENTAL_HEALTH_ORG,
    PLATFORM_ORG,
)
from shared.vocabulary import DataCategory
from tests.referral.conftest import CASEFILE, SUBJECT, Exchange, record_consent

CLINIC_SUBJECT = "lrc-2026-onward-subject-0001"
# What the agreements of the demo seed permit (services/directory/seed.py PERMITTED).
BERLIN_CLINIC = {"identity.basic", "contact", "return.travel", "health.physical"}
CLINIC_MINDBRIDGE = {"identity.basic", "contact", "health.mental", "vulnerability"}
CATEGORIES = sorted(BERLIN_CLINIC | CLINIC_MINDBRIDGE)


async def received(
    exchange: Exchange, categories: list[str], *, subject: str = SUBJECT
) -> dict[str, Any]:
    """Berlin refers the returnee to the Lagos clinic, with a consent for `categories`."""
    await record_consent(exchange, categories, subject=subject)
    response = await exchange.referral.post(
        "/referrals",
        headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
        json={
            "service_id": str(DEMO_HEALTH_SERVICE),
            "subject_ref": subject,
            "requested_categories": categories,
            "casefile": CASEFILE,
        },
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def clinic_consent(
    exchange: Exchange, categories: list[str], *, subject: str = CLINIC_SUBJECT
) -> str:
    """The clinic records the returnee's consent to pass `categories` to MindBridge."""
    return await record_consent(
        exchange,
        categories,
        subject=subject,
        org=MENTAL_HEALTH_ORG,
        office=HEALTH_PROVIDER_ORG,
        role="provider",
    )


async def pass_on(
    exchange: Exchange,
    referral: dict[str, Any],
    requested: list[str],
    *,
    role: str = "provider",
    org: object = HEALTH_PROVIDER_ORG,
    subject: str = CLINIC_SUBJECT,
    headers: dict[str, str] | None = None,
) -> Any:
    """The clinic decrypts the referral received and sends the case file on to MindBridge."""
    casefile = open_payload(referral, exchange.private_key(HEALTH_PROVIDER_ORG))
    return await exchange.referral.post(
        f"/referrals/{referral['id']}/onward",
        headers={**exchange.as_role(role, org), **(headers or {})},
        json={
            "service_id": str(DEMO_MENTAL_HEALTH_SERVICE),
            "subject_ref": subject,
            "requested_categories": requested,
            "casefile": casefile,
        },
    )


async def read(exchange: Exchange, referral_id: str, role: str, org: object) -> Any:
    return await exchange.referral.get(
        f"/referrals/{referral_id}", headers=exchange.as_role(role, org)
    )


async def count(exchange: Exchange) -> int:
    async with exchange.referral_app.state.db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Referral)) or 0)


class TestPassingOn:
    async def test_the_new_referral_is_linked_minimised_again_and_encrypted_to_both(
        self, exchange: Exchange
    ) -> None:
        original = await received(exchange, ["identity.basic", "contact", "health.physical"])
        await clinic_consent(exchange, ["identity.basic", "contact", "health.physical"])
        response = await pass_on(exchange, original, ["identity.basic", "contact"])
        assert response.status_code == 201, response.text
        onward = response.json()
        assert onward["based_on"] == original["id"]
        assert onward["pathway"] == "local"
        assert onward["sender_org_id"] == str(HEALTH_PROVIDER_ORG)
        assert onward["recipient_org_id"] == str(MENTAL_HEALTH_ORG)
        assert onward["shared_categories"] == ["contact", "identity.basic"]
        # The host country stays the case's own, for reports.
        assert onward["host_country"] == original["host_country"] == "DE"
        for org in (MENTAL_HEALTH_ORG, HEALTH_PROVIDER_ORG):
            casefile = open_payload(onward, exchange.private_key(org))
            assert set(casefile) == {"schema_version", "identity_basic", "contact"}
        inbox = await exchange.referral.get(
            "/referrals",
            params={"box": "received"},
            headers=exchange.as_role("provider", MENTAL_HEALTH_ORG),
        )
        assert [r["id"] for r in inbox.json()["items"]] == [onward["id"]]

    async def test_the_first_closes_referred_elsewhere_and_its_sender_sees_only_where_it_went(
        self, exchange: Exchange
    ) -> None:
        original = await received(exchange, ["identity.basic", "contact"])
        await clinic_consent(exchange, ["identity.basic", "contact"])
        onward = (await pass_on(exchange, original, ["identity.basic"])).json()
        seen = await read(exchange, original["id"], "host_office", HOST_OFFICE_ORG)
        body = seen.json()
        assert body["status"] == "completed"
        assert body["outcome"] == "referred-elsewhere"
        assert body["closed_at"] is not None
        assert body["passed_on"] == {
            "referral_id": onward["id"],
            "organisation_id": str(MENTAL_HEALTH_ORG),
            "service_id": str(DEMO_MENTAL_HEALTH_SERVICE),
            "service_category": "mental_health_psychosocial",
        }
        assert body["version"] == original["version"] + 1
        # Berlin is no party to the onward referral: it never gets its case file or metadata.
        hidden = await read(exchange, onward["id"], "host_office", HOST_OFFICE_ORG)
        assert hidden.status_code == 404
        # The NGO learns which referral the case came from, not what it carried.
        theirs = await read(exchange, original["id"], "provider", MENTAL_HEALTH_ORG)
        assert theirs.status_code == 404

    async def test_passing_on_is_audited_and_the_first_sender_is_notified(
        self, exchange: Exchange
    ) -> None:
        original = await received(exchange, ["identity.basic", "contact"])
        await clinic_consent(exchange, ["identity.basic"])
        onward = (await pass_on(exchange, original, ["identity.basic"])).json()
        async with exchange.referral_app.state.db.sessionmaker() as session:
            actions = (
                await session.scalars(
                    select(AuditEvent.action).where(
                        AuditEvent.referral_id == uuid.UUID(original["id"])
                    )
                )
            ).all()
            row = await session.get(Referral, uuid.UUID(original["id"]))
            assert row is not None and row.onward_referral_id == uuid.UUID(onward["id"])
            told = (
                await session.execute(
                    select(OutboxEvent.target_org_id, OutboxEvent.event, OutboxEvent.status).where(
                        OutboxEvent.referral_id == uuid.UUID(original["id"])
                    )
                )
            ).all()
        assert "referral.passed-on" in actions
        assert (HOST_OFFICE_ORG, "referral.status-changed", "completed") in told

    async def test_the_fhir_view_names_the_request_it_is_based_on(self, exchange: Exchange) -> None:
        original = await received(exchange, ["identity.basic", "contact"])
        await clinic_consent(exchange, ["identity.basic"])
        onward = (await pass_on(exchange, original, ["identity.basic"])).json()
        response = await exchange.referral.get(
            f"/referrals/{onward['id']}/fhir",
            headers=exchange.as_role("provider", MENTAL_HEALTH_ORG),
        )
        resources = {e["resource"]["resourceType"]: e["resource"] for e in response.json()["entry"]}
        request, task = resources["ServiceRequest"], resources["Task"]
        assert request["basedOn"] == [{"reference": f"ServiceRequest/{original['id']}"}]
        first_task = str(uuid.uuid5(uuid.UUID(original["id"]), "task"))
        assert task["partOf"] == [{"reference": f"Task/{first_task}"}]
        first = await exchange.referral.get(
            f"/referrals/{original['id']}/fhir",
            headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
        )
        first_resources = {
            e["resource"]["resourceType"]: e["resource"] for e in first.json()["entry"]
        }
        assert "basedOn" not in first_resources["ServiceRequest"]
        outputs = first_resources["Task"]["output"]
        assert {"reference": f"ServiceRequest/{onward['id']}"} in [
            o.get("valueReference") for o in outputs
        ]

    async def test_a_retry_with_the_same_key_answers_the_first_onward_referral(
        self, exchange: Exchange
    ) -> None:
        original = await received(exchange, ["identity.basic", "contact"])
        await clinic_consent(exchange, ["identity.basic"])
        key = {"Idempotency-Key": "onward-retry-0001"}
        first = await pass_on(exchange, original, ["identity.basic"], headers=key)
        again = await pass_on(exchange, original, ["identity.basic"], headers=key)
        assert first.status_code == 201 and again.status_code == 201, again.text
        assert again.json()["id"] == first.json()["id"]
        assert await count(exchange) == 2


class TestWhatMayBePassedOn:
    async def test_a_category_the_first_did_not_carry_is_refused_and_nothing_changes(
        self, exchange: Exchange
    ) -> None:
        original = await received(exchange, ["identity.basic", "contact"])
        await clinic_consent(exchange, ["identity.basic", "contact", "health.mental"])
        response = await pass_on(exchange, original, ["identity.basic", "health.mental"])
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["type"].endswith(":beyond-original-referral")
        assert problem["categories"] == ["health.mental"]
        assert await count(exchange) == 1
        unchanged = (await read(exchange, original["id"], "host_office", HOST_OFFICE_ORG)).json()
        assert unchanged["status"] == "requested" and unchanged["version"] == original["version"]

    async def test_a_withdrawn_consent_of_the_provider_blocks_the_onward_referral(
        self, exchange: Exchange
    ) -> None:
        original = await received(exchange, ["identity.basic", "contact"])
        consent_id = await clinic_consent(exchange, ["identity.basic", "contact"])
        withdrawn = await exchange.consent.post(
            f"/consents/{consent_id}/withdraw",
            json={"reason": "returnee_request"},
            headers=exchange.as_role("provider", HEALTH_PROVIDER_ORG),
        )
        assert withdrawn.status_code == 200, withdrawn.text
        response = await pass_on(exchange, original, ["identity.basic", "contact"])
        assert response.status_code == 422, response.text
        assert response.json()["type"].endswith(":nothing-to-share")
        assert await count(exchange) == 1
        unchanged = (await read(exchange, original["id"], "provider", HEALTH_PROVIDER_ORG)).json()
        assert unchanged["status"] == "requested" and unchanged["passed_on"] is None

    async def test_a_withdrawn_consent_of_the_first_referral_blocks_passing_it_on(
        self, exchange: Exchange
    ) -> None:
        original = await received(exchange, ["identity.basic", "contact"])
        await clinic_consent(exchange, ["identity.basic", "contact"])
        notice = await exchange.referral.post(
            "/internal/consent-withdrawals",
            headers=exchange.minter.headers(roles=["service"], org=str(PLATFORM_ORG)),
            json={
                "event_id": str(uuid.uuid4()),
                "consent_id": original["consent_ids"][0],
                "subject_ref": SUBJECT,
                "withdrawn_at": "2026-11-25T10:00:00Z",
            },
        )
        assert notice.json()["cancelled_referral_ids"] == [original["id"]]
        response = await pass_on(exchange, original, ["identity.basic"])
        assert response.status_code == 409, response.text
        assert response.json()["type"].endswith(":referral-closed")
        assert await count(exchange) == 1

    async def test_a_referral_passed_on_cannot_be_passed_on_again(self, exchange: Exchange) -> None:
        original = await received(exchange, ["identity.basic", "contact"])
        await clinic_consent(exchange, ["identity.basic"])
        assert (await pass_on(exchange, original, ["identity.basic"])).status_code == 201
        again = await pass_on(
            exchange, original, ["identity.basic"], subject="lrc-2026-onward-subject-0002"
        )
        assert again.status_code == 409
        assert again.json()["type"].endswith(":referral-closed")
        assert await count(exchange) == 2


class TestWhoMayPassOn:
    async def test_a_provider_cannot_pass_on_a_referral_not_addressed_to_it(
        self, exchange: Exchange
    ) -> None:
        original = await received(exchange, ["identity.basic", "contact"])
        for role, org in (("provider", MENTAL_HEALTH_ORG), ("coordinator", COORDINATOR_ORG)):
            response = await pass_on(exchange, original, ["identity.basic"], role=role, org=org)
            assert response.status_code == 404, (role, response.text)
        assert await count(exchange) == 1

    async def test_the_sender_may_not_pass_its_own_referral_on(self, exchange: Exchange) -> None:
        original = await received(exchange, ["identity.basic", "contact"])
        host = await pass_on(
            exchange, original, ["identity.basic"], role="host_office", org=HOST_OFFICE_ORG
        )
        assert host.status_code == 403
        # A provider that sent a local referral is its sender, not its recipient.
        await clinic_consent(exchange, ["identity.basic"])
        local = await exchange.referral.post(
            "/referrals",
            headers=exchange.as_role("provider", HEALTH_PROVIDER_ORG),
            json={
                "service_id": str(DEMO_MENTAL_HEALTH_SERVICE),
                "subject_ref": CLINIC_SUBJECT,
                "requested_categories": ["identity.basic"],
                "casefile": CASEFILE,
            },
        )
        assert local.status_code == 201, local.text
        response = await exchange.referral.post(
            f"/referrals/{local.json()['id']}/onward",
            headers=exchange.as_role("provider", HEALTH_PROVIDER_ORG),
            json={
                "service_id": str(DEMO_HEALTH_SERVICE),
                "subject_ref": CLINIC_SUBJECT,
                "requested_categories": ["identity.basic"],
                "casefile": CASEFILE,
            },
        )
        assert response.status_code == 403
        assert response.json()["type"].endswith(":not-the-recipient")
        assert await count(exchange) == 2


class TestSealedOnward:
    async def test_the_provider_seals_the_case_file_it_passes_on_and_refex_never_reads_it(
        self, exchange: Exchange
    ) -> None:
        original = await received(exchange, ["identity.basic", "contact"])
        await clinic_consent(exchange, ["identity.basic", "contact"])
        casefile = open_payload(original, exchange.private_key(HEALTH_PROVIDER_ORG))
        clinic = exchange.as_role("provider", HEALTH_PROVIDER_ORG)
        request = {
            "service_id": str(DEMO_MENTAL_HEALTH_SERVICE),
            "subject_ref": CLINIC_SUBJECT,
            "requested_categories": ["identity.basic", "contact"],
        }
        plan = (
            await exchange.referral.post("/referrals/preview", json=request, headers=clinic)
        ).json()
        keys = [key["jwk"] for key in plan["keys"]]
        sections = {
            category: encrypt_for(
                orjson.dumps(casefile[SECTION_OF[DataCategory(category)]]),
                keys,
                aad=plan["aad"][category].encode(),
            )
            for category in plan["permitted_categories"]
        }
        response = await exchange.referral.post(
            f"/referrals/{original['id']}/onward/sealed",
            json={**request, "reservation": plan["reservation"], "sections": sections},
            headers=clinic,
        )
        assert response.status_code == 201, response.text
        onward = response.json()
        assert onward["payload_mode"] == "sealed" and onward["based_on"] == original["id"]
        opened = open_payload(onward, exchange.private_key(MENTAL_HEALTH_ORG))
        assert opened["contact"] == CASEFILE["contact"]
        first = (await read(exchange, original["id"], "host_office", HOST_OFFICE_ORG)).json()
        assert first["outcome"] == "referred-elsewhere"
        assert first["passed_on"]["referral_id"] == onward["id"]

    async def test_a_sealed_onward_referral_asks_for_no_more_than_the_first_carried(
        self, exchange: Exchange
    ) -> None:
        original = await received(exchange, ["identity.basic"])
        response = await exchange.referral.post(
            f"/referrals/{original['id']}/onward/sealed",
            json={
                "service_id": str(DEMO_MENTAL_HEALTH_SERVICE),
                "subject_ref": CLINIC_SUBJECT,
                "requested_categories": ["identity.basic", "contact"],
                "reservation": "eyJyaWQiOiIwMTkyZjBjNC0uLi4ifQ.c2lnbmF0dXJl",
                "sections": {"contact": {"ciphertext": "x"}},
            },
            headers=exchange.as_role("provider", HEALTH_PROVIDER_ORG),
        )
        assert response.status_code == 422, response.text
        assert response.json()["type"].endswith(":beyond-original-referral")
        assert await count(exchange) == 1


@dataclass(frozen=True)
class OnwardCase:
    """What Berlin's consent allows, what it asks, what the clinic's consent allows and asks."""

    first_consent: frozenset[str]
    first_requested: frozenset[str]
    onward_consent: frozenset[str]
    onward_requested: frozenset[str]


subsets = st.frozensets(st.sampled_from(CATEGORIES), min_size=1)


@st.composite
def onward_cases(draw: st.DrawFn) -> OnwardCase:
    """Mostly onward requests within what the first could carry, sometimes one beyond it."""
    first_consent, first_requested = draw(subsets), draw(subsets)
    within = sorted(first_consent & first_requested) or CATEGORIES
    onward = draw(st.frozensets(st.sampled_from(within), min_size=1))
    beyond = draw(st.frozensets(st.sampled_from(CATEGORIES), max_size=1))
    return OnwardCase(first_consent, first_requested, draw(subsets), onward | beyond)


def drawn_cases(n: int) -> list[OnwardCase]:
    """`n` cases drawn by hypothesis (the HTTP part runs in the test's event loop)."""
    cases: list[OnwardCase] = []

    @settings(max_examples=n, database=None, deadline=None, derandomize=True)
    @given(onward_cases())
    def collect(case: OnwardCase) -> None:
        cases.append(case)

    collect()
    return cases


class TestOnwardMinimisationProperty:
    async def test_onward_shared_is_within_original_shared_new_agreement_and_consent(
        self, exchange: Exchange
    ) -> None:
        outcomes: set[int] = set()
        for n, case in enumerate(drawn_cases(25)):
            first_subject = f"hof-2026-property-{n:04d}-x"
            onward_subject = f"lrc-2026-property-{n:04d}-x"
            await record_consent(exchange, sorted(case.first_consent), subject=first_subject)
            sent = await exchange.referral.post(
                "/referrals",
                headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
                json={
                    "service_id": str(DEMO_HEALTH_SERVICE),
                    "subject_ref": first_subject,
                    "requested_categories": sorted(case.first_requested),
                    "casefile": CASEFILE,
                },
            )
            outcomes.add(sent.status_code if sent.status_code != 201 else 0)
            if sent.status_code != 201:
                assert sent.json()["type"].endswith(":nothing-to-share"), (case, sent.text)
                continue
            original = sent.json()
            carried = set(original["shared_categories"])
            await clinic_consent(exchange, sorted(case.onward_consent), subject=onward_subject)
            response = await pass_on(
                exchange, original, sorted(case.onward_requested), subject=onward_subject
            )
            outcomes.add(response.status_code)
            if not case.onward_requested <= carried:
                assert response.status_code == 422, (case, response.text)
                assert response.json()["type"].endswith(":beyond-original-referral")
                continue
            expected = case.onward_requested & CLINIC_MINDBRIDGE & case.onward_consent
            if not expected:
                assert response.status_code == 422, (case, response.text)
                assert response.json()["type"].endswith(":nothing-to-share")
                continue
            assert response.status_code == 201, (case, response.text)
            shared = set(response.json()["shared_categories"])
            assert shared == expected, case
            assert shared <= carried & CLINIC_MINDBRIDGE & case.onward_consent, case
            casefile = open_payload(response.json(), exchange.private_key(MENTAL_HEALTH_ORG))
            sections = {k.replace("_", ".", 1) for k in casefile if k != "schema_version"}
            assert sections <= shared, case
        assert {201, 422} <= outcomes, outcomes  # both passing on and refusing were exercised
