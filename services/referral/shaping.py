"""Referral rows shaped for a caller: the one place a Referral becomes a ReferralRead."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from services.referral.cost_schemas import (
    ROUNDING,
    CostShareLineRead,
    ReferralCostRead,
    Settlement,
)
from services.referral.lifecycle import Party, allowed_moves, party_of, reads_content
from services.referral.models import CostShareLine, Referral, ReferralCost
from services.referral.schemas import (
    AgreementRef,
    EncryptedTo,
    PassedOn,
    PayloadMode,
    ReasonCode,
    ReferralRead,
    Status,
    Urgency,
    WithheldCategory,
)
from services.referral.sla import is_overdue
from shared.auth import Principal
from shared.clock import utcnow
from shared.i18n import N_, Message, gettext
from shared.money import from_minor
from shared.vocabulary import WITHHELD_EXPLANATIONS, DataCategory, Pathway, WithheldReason


def to_read(
    referral: Referral,
    principal: Principal,
    now: datetime | None = None,
    *,
    with_content: bool = True,
) -> ReferralRead:
    """Shape a referral for this caller: parties get the JWE, auditors metadata only.

    Without `with_content` (lists not asked for the payload) nobody gets the JWEs.
    """
    party = party_of(referral, principal)
    now = now or utcnow()
    content = with_content and reads_content(referral, party)
    return ReferralRead(
        id=referral.id,
        version=referral.version,
        status=Status(referral.status),
        status_reason=ReasonCode(referral.status_reason) if referral.status_reason else None,
        sender_org_id=referral.sender_org_id,
        recipient_org_id=referral.recipient_org_id,
        service_id=referral.service_id,
        service_category=referral.service_category,
        programme=referral.programme,
        host_country=referral.host_country,
        origin_country=referral.origin_country,
        purpose=referral.purpose,
        urgency=Urgency(referral.urgency),
        pathway=Pathway(referral.pathway or Pathway.INTERNATIONAL),
        based_on=referral.based_on_id,
        passed_on=_passed_on(referral),
        basis=referral.basis,
        emergency=referral.basis == "emergency",
        consent_ids=referral.consent_ids,
        override_id=referral.override_id,
        agreement=AgreementRef(id=referral.agreement_id, version=referral.agreement_version),
        shared_categories=[DataCategory(c) for c in referral.shared_categories],
        withheld=[
            WithheldCategory(category=c, reason=r) for c, r in sorted(referral.withheld.items())
        ],
        warnings=_warnings(referral) + _withdrawal_notice(referral, party),
        start_after=referral.start_after,
        acknowledge_by=referral.acknowledge_by,
        respond_by=referral.respond_by,
        overdue=is_overdue(referral, now),
        created_at=referral.created_at,
        updated_at=referral.updated_at,
        acknowledged_at=referral.acknowledged_at,
        accepted_at=referral.accepted_at,
        closed_at=referral.closed_at,
        outcome=referral.outcome,
        feedback_score=referral.feedback_score,
        feedback=referral.feedback if content else None,
        allowed_moves=allowed_moves(referral, party),
        payload_mode=PayloadMode(referral.payload_mode),
        payload=referral.payload if content else None,
        encrypted_to=_encrypted_to(referral),
    )


def _passed_on(referral: Referral) -> PassedOn | None:
    if referral.onward_referral_id is None:
        return None
    return PassedOn.model_validate(
        {
            "referral_id": referral.onward_referral_id,
            "organisation_id": referral.onward_org_id,
            "service_id": referral.onward_service_id,
            "service_category": referral.onward_service_category,
        }
    )


def _encrypted_to(referral: Referral) -> list[EncryptedTo]:
    if referral.sender_kids is None:  # made before the key owners were kept
        return [EncryptedTo(kid=kid) for kid in referral.recipient_kids]
    sender_kids = set(referral.sender_kids)
    return [
        EncryptedTo(kid=kid, party="sender", org_id=referral.sender_org_id)
        if kid in sender_kids
        else EncryptedTo(kid=kid, party="recipient", org_id=referral.recipient_org_id)
        for kid in referral.recipient_kids
    ]


def _warnings(referral: Referral) -> list[str]:
    """Name each category the provider needs at first contact that was withheld, and why."""
    warnings = []
    for category in referral.first_contact_missing:
        reason = WithheldReason(referral.withheld.get(category, WithheldReason.NOT_REQUESTED))
        warning = Message(
            "The provider needs {category} at first contact, but it was withheld ({reason}). "
            "{explanation} Ask the returnee for consent for it, or agree it in the SOP, then "
            "send a new referral.",
            category=category,
            reason=reason.value,
            explanation=Message(WITHHELD_EXPLANATIONS[reason]),
        )
        warnings.append(warning.render())
    return warnings


def _withdrawal_notice(referral: Referral, party: Party | None) -> list[str]:
    if party is None or reads_content(referral, party):
        return []
    notice = N_(
        "The returnee withdrew the consent this referral rested on: its case file, feedback and "
        "notes are no longer shared with you. Delete any copy you keep, as your agreement says."
    )
    return [gettext(notice)]


def cost_read(
    referral: Referral, cost: ReferralCost, lines: list[CostShareLine]
) -> ReferralCostRead:
    """Shape a referral's cost and split, amounts as decimals of the currency's minor unit."""
    currency = cost.currency

    def amount(minor: int | None) -> Decimal | None:
        return None if minor is None else from_minor(minor, currency)

    return ReferralCostRead(
        referral_id=referral.id,
        programme=referral.programme,
        service_category=referral.service_category,
        currency=currency,
        estimated_amount=amount(cost.estimated_minor),
        actual_amount=amount(cost.actual_minor),
        split_of="actual" if cost.actual_minor is not None else "estimate",
        shares=[
            CostShareLineRead(
                cost_share_id=line.cost_share_id,
                payer_org_id=line.payer_org_id,
                basis=line.basis,
                amount=from_minor(line.amount_minor, currency),
                currency=currency,
                status=Settlement(line.status),
                invoiced_at=line.invoiced_at,
                paid_at=line.paid_at,
            )
            for line in lines
        ],
        uncovered_amount=from_minor(cost.uncovered_minor, currency),
        rounding=gettext(ROUNDING),
        version=cost.version,
        updated_at=cost.updated_at,
    )
