"""Rows of the consent service become response models here, and nowhere else."""

from __future__ import annotations

import base64

import orjson

from services.consent.ledger import InclusionProof
from services.consent.models import (
    Consent,
    Disclosure,
    EmergencyOverride,
    LedgerEntry,
    OutboxEvent,
    TreeHead,
)
from services.consent.schemas import (
    ConsentRead,
    DisclosureRead,
    DisclosureRecorded,
    InclusionProofRead,
    LedgerEntryRead,
    OverrideRead,
    TreeHeadRead,
    WithdrawalDeadLetter,
)
from services.consent.service import consent_status, grantee_data, override_status
from services.consent.signing import tree_head_message
from shared.clock import utcnow

_CONSENT_FIELDS = [
    "id",
    "subject_ref",
    "grantor",
    "purpose",
    "categories",
    "valid_from",
    "valid_until",
    "language",
    "recorded_by_org",
    "recorded_by_client",
    "recorded_at",
    "withdrawn_at",
    "withdrawal_reason",
    "ledger_index",
]


def consent_read(consent: Consent) -> ConsentRead:
    """Shape a consent with its grantee, evidence and current status."""
    return ConsentRead.model_validate(
        {
            **{key: getattr(consent, key) for key in _CONSENT_FIELDS},
            "grantee": grantee_data(consent),
            "evidence": {"method": consent.evidence_method, "form_sha256": consent.evidence_sha256},
            "status": consent_status(consent, utcnow()),
        }
    )


def disclosure_read(disclosure: Disclosure) -> DisclosureRead:
    """Shape a recorded disclosure."""
    return DisclosureRead.model_validate(disclosure, from_attributes=True)


def disclosure_recorded(disclosure: Disclosure) -> DisclosureRecorded:
    """Shape the receipt of a disclosure: its id, ledger index and time."""
    return DisclosureRecorded(
        id=disclosure.id, ledger_index=disclosure.ledger_index, recorded_at=disclosure.recorded_at
    )


def override_read(override: EmergencyOverride) -> OverrideRead:
    """Shape an override with its current status."""
    fields = {name: getattr(override, name) for name in OverrideRead.model_fields}
    fields["status"] = override_status(override, utcnow())
    return OverrideRead.model_validate(fields)


def tree_head_read(head: TreeHead) -> TreeHeadRead:
    """Shape a signed tree head with the statement its signature covers."""
    return TreeHeadRead(
        tree_size=head.tree_size,
        root_hash=head.root_hash.hex(),
        timestamp_ms=head.timestamp_ms,
        key_id=head.key_id,
        signature=base64.b64encode(head.signature).decode(),
        signed_statement=tree_head_message(
            tree_size=head.tree_size, root_hash=head.root_hash, timestamp_ms=head.timestamp_ms
        ).decode(),
    )


def inclusion_proof_read(index: int, tree_size: int, proof: InclusionProof) -> InclusionProofRead:
    """Shape an inclusion proof in hex."""
    return InclusionProofRead(
        index=index,
        tree_size=tree_size,
        leaf_hash=proof.leaf_hash.hex(),
        audit_path=[h.hex() for h in proof.path],
        root_hash=proof.root_hash.hex(),
    )


def ledger_entry_read(entry: LedgerEntry, leaf_hash: bytes) -> LedgerEntryRead:
    """Shape a ledger entry; its body is null once retention purged it."""
    return LedgerEntryRead(
        index=entry.index,
        event_type=entry.event_type,
        appended_at=entry.appended_at,
        leaf_hash=leaf_hash.hex(),
        body=orjson.loads(entry.body) if entry.body is not None else None,
        purged_at=entry.purged_at,
    )


def dead_letter_read(row: OutboxEvent) -> WithdrawalDeadLetter:
    """Shape a dead-lettered withdrawal notice for the steward."""
    assert row.dead_at is not None  # the service lists dead letters only
    return WithdrawalDeadLetter(
        event_id=row.id,
        event=row.kind,
        consent_id=row.payload["consent_id"],
        attempts=row.attempts,
        last_error=row.last_error,
        dead_at=row.dead_at,
    )
