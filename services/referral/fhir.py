"""A FHIR R4 view of a referral: ServiceRequest + Task + Consent references, no clear data."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import orjson

from services.referral.schemas import EncryptedTo, ReferralRead, Status

SYSTEM = "urn:refex"
ORG_SYSTEM = f"{SYSTEM}:organisation"
PAYLOAD_MODE_SYSTEM = f"{SYSTEM}:payload-mode"
# HL7 purpose of use: shared under a life-at-risk override, not under consent.
EMERGENCY_LABEL = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
    "code": "ETREAT",
    "display": "emergency treatment",
}
# Task.status uses the same codes; ServiceRequest.status has its own, coarser set.
REQUEST_STATUS = {
    Status.REQUESTED: "active",
    Status.RECEIVED: "active",
    Status.ACCEPTED: "active",
    Status.IN_PROGRESS: "active",
    Status.ON_HOLD: "on-hold",
    Status.COMPLETED: "completed",
    Status.REJECTED: "revoked",
    Status.CANCELLED: "revoked",
    Status.FAILED: "revoked",  # ended without the service being delivered
    Status.ENTERED_IN_ERROR: "entered-in-error",
}


def _org(org_id: object) -> dict[str, Any]:
    return {"type": "Organization", "identifier": {"system": ORG_SYSTEM, "value": str(org_id)}}


def _entry_url(resource_id: object) -> str:
    """The Bundle fullUrl of a resource; references inside the Bundle must use it to resolve."""
    return f"urn:uuid:{resource_id}"


def _supporting_info(referral: ReferralRead) -> list[dict[str, Any]]:
    info: list[dict[str, Any]] = [{"reference": f"Consent/{cid}"} for cid in referral.consent_ids]
    if referral.override_id:
        info.append(
            {
                "identifier": {
                    "system": f"{SYSTEM}:emergency-override",
                    "value": referral.override_id,
                },
                "display": "emergency override (life at risk)",
            }
        )
    if referral.payload is not None:
        info.append({"reference": f"#casefile-{referral.id}"})
    return info


def _service_request(referral: ReferralRead) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": str(referral.id),
        "status": REQUEST_STATUS[referral.status],
        "intent": "order",
        "priority": "urgent" if referral.urgency == "urgent" else "routine",
        "category": [
            {
                "coding": [
                    {"system": f"{SYSTEM}:service-category", "code": str(referral.service_category)}
                ]
            }
        ],
        "code": {"coding": [{"system": f"{SYSTEM}:service", "code": str(referral.service_id)}]},
        "subject": {"display": "returnee (identity only in the encrypted case file)"},
        "authoredOn": referral.created_at.isoformat(),
        "requester": _org(referral.sender_org_id),
        "performer": [_org(referral.recipient_org_id)],
    }
    if referral.start_after is not None:  # sent before departure, due after arrival
        resource["occurrencePeriod"] = {"start": referral.start_after.isoformat()}
    if referral.based_on is not None:  # an onward referral: the request it follows from
        resource["basedOn"] = [{"reference": f"ServiceRequest/{referral.based_on}"}]
    # FHIR JSON allows no empty arrays: an auditor's view of an emergency referral has no info.
    if info := _supporting_info(referral):
        resource["supportingInfo"] = info
    if referral.encrypted_to:
        resource["extension"] = [_encrypted_to(key) for key in referral.encrypted_to]
    # Who encrypted the case file (refex on receipt, or the sender's own system) tags the view.
    resource["meta"] = {
        "tag": [{"system": PAYLOAD_MODE_SYSTEM, "code": str(referral.payload_mode)}]
    }
    if referral.emergency:
        resource["meta"]["security"] = [EMERGENCY_LABEL]
    if referral.payload is not None:
        resource["contained"] = [
            {
                "resourceType": "Binary",
                "id": f"casefile-{referral.id}",
                "contentType": "application/jose+json",
                "data": _b64(referral.payload),
            }
        ]
    return resource


def _encrypted_to(key: EncryptedTo) -> dict[str, Any]:
    """A key the case file was encrypted to, assigned by the organisation that holds it."""
    identifier: dict[str, Any] = {"system": f"{SYSTEM}:key", "value": key.kid}
    if key.org_id is not None:
        identifier["assigner"] = _org(key.org_id)
    return {"url": f"{SYSTEM}:encrypted-to", "valueIdentifier": identifier}


def _b64(payload: dict[str, Any]) -> str:
    return base64.b64encode(orjson.dumps(payload)).decode()


def task_id(referral: ReferralRead) -> str:
    """A stable id of the Task, distinct from the ServiceRequest's."""
    return _task_id(referral.id)


def _task_id(referral_id: uuid.UUID) -> str:
    return str(uuid.uuid5(referral_id, "task"))


def _task(referral: ReferralRead) -> dict[str, Any]:
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": task_id(referral),
        "status": str(referral.status),
        "intent": "order",
        "basedOn": [{"reference": _entry_url(referral.id)}],
        "focus": {"reference": _entry_url(referral.id)},
        "authoredOn": referral.created_at.isoformat(),
        "lastModified": referral.updated_at.isoformat(),
        "requester": _org(referral.sender_org_id),
        "owner": _org(referral.recipient_org_id),
    }
    if referral.based_on is not None:  # the onward Task is part of the one passed on
        task["partOf"] = [{"reference": f"Task/{_task_id(referral.based_on)}"}]
    if referral.status_reason:
        task["statusReason"] = {
            "coding": [{"system": f"{SYSTEM}:reason", "code": str(referral.status_reason)}]
        }
    if referral.overdue:
        task["businessStatus"] = {"text": "overdue"}
    if referral.respond_by:
        task["restriction"] = {
            "period": {
                "start": referral.created_at.isoformat(),
                "end": referral.respond_by.isoformat(),
            }
        }
    if referral.outcome:
        task["output"] = [
            {
                "type": {"coding": [{"system": f"{SYSTEM}:output", "code": "outcome"}]},
                "valueCode": str(referral.outcome),
            }
        ]
    if referral.passed_on is not None:  # where the case went: the onward request, by reference
        task.setdefault("output", []).append(
            {
                "type": {"coding": [{"system": f"{SYSTEM}:output", "code": "onward-referral"}]},
                "valueReference": {"reference": f"ServiceRequest/{referral.passed_on.referral_id}"},
            }
        )
    return task


def bundle(referral: ReferralRead) -> dict[str, Any]:
    """Return the referral as a FHIR R4 collection Bundle."""
    entries = [_service_request(referral), _task(referral)]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": referral.updated_at.isoformat(),
        "entry": [{"fullUrl": _entry_url(e["id"]), "resource": e} for e in entries],
    }
