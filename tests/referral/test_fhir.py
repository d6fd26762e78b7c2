"""The FHIR R4 view of a referral validates with the R4B models and shows no personal data."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from fhir.resources.R4B.binary import Binary
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task
from pydantic import ValidationError

from services.referral.fhir import bundle
from services.referral.schemas import AgreementRef, ReferralRead, Status
from shared.client import open_payload
from shared.crypto import encrypt_for, generate_encryption_key, public_part
from shared.demo import (
    AUDITOR_ORG,
    DEMO_HEALTH_SERVICE,
    HEALTH_PROVIDER_ORG,
    HOST_OFFICE_ORG,
    SECOND_HOST_OFFICE_ORG,
)
from tests.referral.conftest import CASEFILE, SUBJECT, Exchange, record_consent

CREATED = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
SENDER = uuid.UUID("0192f0c4-0000-7000-8000-00000000a001")
RECIPIENT = uuid.UUID("0192f0c4-0000-7000-8000-00000000b002")
CONSENT = "0192f0c4-0000-7000-8000-00000000c003"
RECIPIENT_KEY = generate_encryption_key("provider-2026")
SENDER_KEY = generate_encryption_key("host-office-2026")
# ServiceRequest.status for each Task status, as docs/fhir-mapping.md states it.
REQUEST_STATUS = {
    "requested": "active",
    "received": "active",
    "accepted": "active",
    "in-progress": "active",
    "on-hold": "on-hold",
    "completed": "completed",
    "rejected": "revoked",
    "cancelled": "revoked",
    "failed": "revoked",
    "entered-in-error": "entered-in-error",
}


def sealed_casefile(referral_id: uuid.UUID) -> dict[str, Any]:
    """The case file as JWE to both parties, bound to the referral as the service does."""
    return encrypt_for(
        orjson.dumps(CASEFILE),
        [public_part(RECIPIENT_KEY), public_part(SENDER_KEY)],
        aad=f"refex:referral:{referral_id}".encode(),
    )


def referral(**overrides: Any) -> ReferralRead:
    """A referral as the recipient reads it; `overrides` change any field."""
    referral_id = overrides.pop("id", uuid.uuid4())
    fields: dict[str, Any] = {
        "id": referral_id,
        "version": 1,
        "status": Status.REQUESTED,
        "sender_org_id": SENDER,
        "recipient_org_id": RECIPIENT,
        "service_id": uuid.UUID("0192f0c4-0000-7000-8000-00000000d004"),
        "service_category": "health",
        "programme": "eu-reintegration-2026",
        "purpose": "referral",
        "urgency": "routine",
        "basis": "consent",
        "emergency": False,
        "consent_ids": [CONSENT],
        "agreement": AgreementRef(id=uuid.uuid4(), version=2),
        "shared_categories": ["identity.basic", "contact", "health.physical"],
        "withheld": [{"category": "health.mental", "reason": "not_in_sop"}],
        "acknowledge_by": CREATED + timedelta(hours=4),
        "respond_by": CREATED + timedelta(hours=16),
        "created_at": CREATED,
        "updated_at": CREATED,
        "payload": sealed_casefile(referral_id),
        "encrypted_to": [
            {"kid": "provider-2026", "party": "recipient", "org_id": RECIPIENT},
            {"kid": "host-office-2026", "party": "sender", "org_id": SENDER},
        ],
    }
    return ReferralRead.model_validate(fields | overrides)


ACCEPTED = {"status": Status.ACCEPTED, "accepted_at": CREATED + timedelta(hours=2)}
COMPLETED = {
    "status": Status.COMPLETED,
    "outcome": "got-help",
    "feedback_score": 4,
    "closed_at": CREATED + timedelta(days=3),
    "updated_at": CREATED + timedelta(days=3),
}
CANCELLED = {"status": Status.CANCELLED, "status_reason": "consent-withdrawn"}
AUDITOR_VIEW = {"payload": None, "status": Status.RECEIVED}
EMERGENCY_AUDITOR_VIEW = {
    "payload": None,
    "basis": "emergency",
    "emergency": True,
    "consent_ids": [],
    "override_id": "0192f0c4-0000-7000-8000-00000000e005",
}
# Required bindings of FHIR R4 (fhir.resources does not enforce them).
TASK_STATUS_CODES = {
    "draft", "requested", "received", "accepted", "rejected", "ready", "cancelled",
    "in-progress", "on-hold", "failed", "completed", "entered-in-error",
}  # fmt: skip
REQUEST_STATUS_CODES = {
    "draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"
}  # fmt: skip
INTENT_CODES = {
    "proposal", "plan", "directive", "order", "original-order", "reflex-order",
    "filler-order", "instance-order", "option", "unknown",
}  # fmt: skip
PRIORITY_CODES = {"routine", "urgent", "asap", "stat"}
SCENARIOS = {
    "requested": {},
    "accepted": ACCEPTED,
    "completed with outcome": COMPLETED,
    "cancelled with reason": CANCELLED,
    "rejected with reason": {"status": Status.REJECTED, "status_reason": "no-capacity"},
    "overdue": {"overdue": True, "status": Status.RECEIVED},
    "auditor view": AUDITOR_VIEW,
    "emergency, auditor view": EMERGENCY_AUDITOR_VIEW,
    "key owners unknown": {"encrypted_to": [{"kid": "provider-2026"}, {"kid": "host-office-2026"}]},
    "no keys listed": {"encrypted_to": []},
    "due after arrival": {"start_after": CREATED + timedelta(days=14)},
}


def parsed(referral_read: ReferralRead) -> tuple[Bundle, ServiceRequest, Task]:
    """Validate the referral's Bundle with the R4B models; return it and its two resources."""
    model = Bundle.model_validate(bundle(referral_read))
    request, task = (entry.resource for entry in model.entry)
    assert isinstance(request, ServiceRequest)
    assert isinstance(task, Task)
    return model, request, task


def empty_elements(value: Any, path: str = "$") -> list[str]:
    """Paths of empty objects, arrays and strings, which FHIR JSON forbids."""
    if value in ({}, [], "", None):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in empty_elements(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in empty_elements(v, f"{path}[{i}]")]
    return []


def references(value: Any) -> list[str]:
    """Every Reference.reference in a resource tree."""
    if isinstance(value, dict):
        own = [value["reference"]] if isinstance(value.get("reference"), str) else []
        return own + [r for v in value.values() for r in references(v)]
    if isinstance(value, list):
        return [r for v in value for r in references(v)]
    return []


def org_of(reference: Any) -> str:
    assert reference.type == "Organization"
    assert reference.identifier.system == "urn:refex:organisation"
    return str(reference.identifier.value)


class TestTheBundleIsValidFhir:
    @pytest.mark.parametrize("overrides", SCENARIOS.values(), ids=SCENARIOS.keys())
    def test_it_validates_as_an_r4b_collection_of_a_service_request_and_a_task(
        self, overrides: dict[str, Any]
    ) -> None:
        model, _, _ = parsed(referral(**overrides))
        assert model.type == "collection"
        assert [e.resource.get_resource_type() for e in model.entry] == ["ServiceRequest", "Task"]
        assert len({e.fullUrl for e in model.entry}) == 2

    @pytest.mark.parametrize("status", list(Status))
    def test_every_status_gives_a_valid_bundle(self, status: Status) -> None:
        reason = "other" if status in {"rejected", "cancelled", "on-hold", "failed"} else None
        _, request, task = parsed(referral(status=status, status_reason=reason))
        assert task.status == str(status)
        assert request.status == REQUEST_STATUS[status]

    @pytest.mark.parametrize("overrides", SCENARIOS.values(), ids=SCENARIOS.keys())
    def test_no_element_is_empty(self, overrides: dict[str, Any]) -> None:
        assert empty_elements(bundle(referral(**overrides))) == []

    @pytest.mark.parametrize("overrides", SCENARIOS.values(), ids=SCENARIOS.keys())
    def test_every_reference_resolves_inside_the_bundle_or_names_a_consent(
        self, overrides: dict[str, Any]
    ) -> None:
        document = bundle(referral(**overrides))
        full_urls = {entry["fullUrl"] for entry in document["entry"]}
        for entry in document["entry"]:
            contained = {f"#{c['id']}" for c in entry["resource"].get("contained", [])}
            for target in references(entry["resource"]):
                internal = target in full_urls or target in contained
                assert internal or target == f"Consent/{CONSENT}", target

    @pytest.mark.parametrize("overrides", SCENARIOS.values(), ids=SCENARIOS.keys())
    def test_coded_elements_use_the_fhir_value_sets(self, overrides: dict[str, Any]) -> None:
        # fhir.resources checks types and cardinality, not required bindings: check those here.
        _, request, task = parsed(referral(**overrides))
        assert request.status in REQUEST_STATUS_CODES
        assert request.intent in INTENT_CODES and task.intent in INTENT_CODES
        assert request.priority in PRIORITY_CODES
        assert task.status in TASK_STATUS_CODES

    def test_the_models_really_reject_a_broken_mapping(self) -> None:
        missing = bundle(referral())
        del missing["entry"][1]["resource"]["intent"]
        naive = bundle(referral())
        naive["entry"][1]["resource"]["authoredOn"] = CREATED.replace(tzinfo=None).isoformat()
        for document in (missing, naive):
            with pytest.raises(ValidationError):
                Bundle.model_validate(document)


class TestTask:
    def test_the_recipient_owns_it_and_the_sender_requested_it(self) -> None:
        _, request, task = parsed(referral(**ACCEPTED))
        assert org_of(task.owner) == str(RECIPIENT)
        assert org_of(task.requester) == str(SENDER)
        assert org_of(request.requester) == str(SENDER)
        assert [org_of(p) for p in request.performer] == [str(RECIPIENT)]

    def test_it_is_based_on_and_focused_on_the_service_request(self) -> None:
        model, _, task = parsed(referral())
        request_url = model.entry[0].fullUrl
        assert task.focus.reference == request_url
        assert [r.reference for r in task.basedOn] == [request_url]
        assert task.intent == "order"

    def test_the_response_deadline_is_the_restriction_period(self) -> None:
        _, _, task = parsed(referral())
        assert task.restriction.period.start == CREATED
        assert task.restriction.period.end == CREATED + timedelta(hours=16)
        _, _, undated = parsed(referral(respond_by=None))
        assert undated.restriction is None

    def test_the_outcome_of_a_completed_referral_is_its_output(self) -> None:
        _, request, task = parsed(referral(**COMPLETED))
        (output,) = task.output
        assert (output.type.coding[0].system, output.type.coding[0].code) == (
            "urn:refex:output",
            "outcome",
        )
        assert output.valueCode == "got-help"
        assert request.status == "completed"
        assert task.lastModified == COMPLETED["updated_at"]
        assert parsed(referral(**ACCEPTED))[2].output is None

    @pytest.mark.parametrize(
        ("status", "reason"),
        [
            ("cancelled", "consent-withdrawn"),
            ("rejected", "no-capacity"),
            ("on-hold", "awaiting-consent"),
        ],
    )
    def test_the_reason_code_is_the_status_reason(self, status: str, reason: str) -> None:
        _, _, task = parsed(referral(status=status, status_reason=reason))
        (coding,) = task.statusReason.coding
        assert (coding.system, coding.code) == ("urn:refex:reason", reason)
        assert parsed(referral(**ACCEPTED))[2].statusReason is None

    def test_an_overdue_referral_says_so_in_the_business_status(self) -> None:
        _, _, task = parsed(referral(overdue=True))
        assert task.businessStatus.text == "overdue"
        assert parsed(referral())[2].businessStatus is None

    def test_urgency_is_the_priority_and_the_category_the_service_category(self) -> None:
        _, request, _ = parsed(referral(urgency="urgent"))
        assert request.priority == "urgent"
        assert request.category[0].coding[0].code == "health"
        assert parsed(referral())[1].priority == "routine"


class TestNoPersonalDataInClear:
    @pytest.mark.parametrize("overrides", SCENARIOS.values(), ids=SCENARIOS.keys())
    def test_nothing_of_the_case_file_or_the_subject_appears(
        self, overrides: dict[str, Any]
    ) -> None:
        text = orjson.dumps(bundle(referral(**overrides))).decode()
        assert "CANARY" not in text
        assert "+234" not in text
        assert SUBJECT not in text

    def test_the_case_file_travels_only_as_the_jwe_binary_the_parties_can_open(self) -> None:
        read = referral()
        _, request, _ = parsed(read)
        (binary,) = request.contained
        assert isinstance(binary, Binary)
        assert binary.contentType == "application/jose+json"
        assert {"reference": f"#{binary.id}"} in bundle(read)["entry"][0]["resource"][
            "supportingInfo"
        ]
        raw = bundle(read)["entry"][0]["resource"]["contained"][0]["data"]
        jwe = orjson.loads(base64.b64decode(raw, validate=True))
        assert jwe == read.payload == orjson.loads(binary.data)
        for key in (RECIPIENT_KEY, SENDER_KEY):
            assert open_payload({"id": str(read.id), "payload": jwe}, key) == CASEFILE

    def test_the_subject_is_named_only_as_the_encrypted_case_file(self) -> None:
        _, request, _ = parsed(referral())
        assert request.subject.reference is None and request.subject.identifier is None
        assert "encrypted" in request.subject.display

    @pytest.mark.parametrize(
        "overrides", [AUDITOR_VIEW, EMERGENCY_AUDITOR_VIEW], ids=["consent", "emergency"]
    )
    def test_an_auditor_gets_no_binary_at_all(self, overrides: dict[str, Any]) -> None:
        document = bundle(referral(**overrides))
        _, request, _ = parsed(referral(**overrides))
        assert request.contained is None
        assert not [r for r in references(document) if r.startswith("#")]


class TestConsentReferences:
    def test_each_consent_the_referral_rests_on_is_referenced(self) -> None:
        second = "0192f0c4-0000-7000-8000-00000000c0ff"
        _, request, _ = parsed(referral(consent_ids=[CONSENT, second]))
        consents = [
            i.reference
            for i in request.supportingInfo
            if (i.reference or "").startswith("Consent/")
        ]
        assert consents == [f"Consent/{CONSENT}", f"Consent/{second}"]

    def test_an_emergency_override_is_labelled_and_identified_instead(self) -> None:
        _, request, _ = parsed(referral(**EMERGENCY_AUDITOR_VIEW))
        (label,) = request.meta.security
        assert (label.system, label.code) == (
            "http://terminology.hl7.org/CodeSystem/v3-ActReason",
            "ETREAT",
        )
        (info,) = request.supportingInfo
        assert info.identifier.value == EMERGENCY_AUDITOR_VIEW["override_id"]
        # A consent-based referral carries no security label (its meta only tags the mode).
        plain_meta = parsed(referral())[1].meta
        assert plain_meta is not None and plain_meta.security is None


class TestOverHttp:
    async def test_each_party_gets_its_view_and_strangers_get_nothing(
        self, exchange: Exchange
    ) -> None:
        await record_consent(exchange, ["identity.basic", "contact", "health.physical"])
        created = await exchange.referral.post(
            "/referrals",
            json={
                "service_id": str(DEMO_HEALTH_SERVICE),
                "subject_ref": SUBJECT,
                "requested_categories": ["identity.basic", "contact", "health.physical"],
                "casefile": CASEFILE,
            },
            headers=exchange.as_role("host_office", HOST_OFFICE_ORG),
        )
        assert created.status_code == 201, created.text
        path = f"/referrals/{created.json()['id']}/fhir"
        provider = await exchange.referral.get(
            path, headers=exchange.as_role("provider", HEALTH_PROVIDER_ORG)
        )
        assert provider.status_code == 200
        document = provider.json()
        Bundle.model_validate(document)
        binary = document["entry"][0]["resource"]["contained"][0]
        jwe = orjson.loads(base64.b64decode(binary["data"]))
        casefile = open_payload(
            created.json() | {"payload": jwe}, exchange.private_key(HEALTH_PROVIDER_ORG)
        )
        assert casefile["identity_basic"]["given_name"] == "CANARY-Amina"
        assert "CANARY" not in provider.text and SUBJECT not in provider.text
        audited = await exchange.referral.get(
            path, headers=exchange.as_role("auditor", AUDITOR_ORG)
        )
        assert audited.status_code == 200
        Bundle.model_validate(audited.json())
        assert "contained" not in audited.json()["entry"][0]["resource"]
        stranger = await exchange.referral.get(
            path, headers=exchange.as_role("host_office", SECOND_HOST_OFFICE_ORG)
        )
        assert stranger.status_code == 404
        assert "CANARY" not in stranger.text


class TestDueAfterArrival:
    def test_start_after_is_the_service_requests_occurrence_start(self) -> None:
        start = CREATED + timedelta(days=14)
        _, request, _ = parsed(referral(start_after=start))
        assert request.occurrencePeriod is not None
        assert request.occurrencePeriod.start == start
        _, due_now, _ = parsed(referral())
        assert due_now.occurrencePeriod is None
