"""The lifecycle of a referral: who may make which move, and the one way a change is recorded."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.referral.audit import append_audit
from services.referral.errors import IllegalTransition, MissingReason
from services.referral.models import Referral
from services.referral.notifications import enqueue
from services.referral.schemas import CLOSED_STATUSES, ReasonCode, Status, StatusChange
from shared.auth import Principal
from shared.i18n import N_, Message
from shared.vocabulary import Role


class Party(StrEnum):
    """Which side of a referral a caller is on."""

    SENDER = "sender"
    RECIPIENT = "recipient"


# Who may make each move (FHIR Task codes). Anything not listed is an illegal move.
TRANSITIONS: dict[tuple[Status, Status], Party] = {
    (Status.REQUESTED, Status.RECEIVED): Party.RECIPIENT,
    (Status.REQUESTED, Status.ACCEPTED): Party.RECIPIENT,
    (Status.RECEIVED, Status.ACCEPTED): Party.RECIPIENT,
    (Status.REQUESTED, Status.REJECTED): Party.RECIPIENT,
    (Status.RECEIVED, Status.REJECTED): Party.RECIPIENT,
    (Status.ACCEPTED, Status.IN_PROGRESS): Party.RECIPIENT,
    (Status.ACCEPTED, Status.COMPLETED): Party.RECIPIENT,
    (Status.IN_PROGRESS, Status.COMPLETED): Party.RECIPIENT,
    (Status.ACCEPTED, Status.FAILED): Party.RECIPIENT,
    (Status.IN_PROGRESS, Status.FAILED): Party.RECIPIENT,
    (Status.ACCEPTED, Status.ON_HOLD): Party.RECIPIENT,
    (Status.IN_PROGRESS, Status.ON_HOLD): Party.RECIPIENT,
    (Status.ON_HOLD, Status.IN_PROGRESS): Party.RECIPIENT,
    (Status.REQUESTED, Status.CANCELLED): Party.SENDER,
    (Status.RECEIVED, Status.CANCELLED): Party.SENDER,
    (Status.ACCEPTED, Status.CANCELLED): Party.SENDER,
    (Status.IN_PROGRESS, Status.CANCELLED): Party.SENDER,
    (Status.ON_HOLD, Status.CANCELLED): Party.SENDER,
    (Status.REQUESTED, Status.ENTERED_IN_ERROR): Party.SENDER,
    (Status.RECEIVED, Status.ENTERED_IN_ERROR): Party.SENDER,
}
NEEDS_REASON = frozenset({Status.REJECTED, Status.CANCELLED, Status.ON_HOLD, Status.FAILED})
PARTY_ROLES = {
    Party.SENDER: {Role.HOST_OFFICE, Role.PROVIDER, Role.COORDINATOR},
    Party.RECIPIENT: {Role.PROVIDER, Role.COORDINATOR},
}
BOTH_PARTIES = (Party.SENDER, Party.RECIPIENT)


def party_of(referral: Referral, principal: Principal) -> Party | None:
    """Return the caller's side of this referral, or None when it is not a party."""
    org = principal.org_id
    if org == str(referral.sender_org_id) and principal.has_any_role(*PARTY_ROLES[Party.SENDER]):
        return Party.SENDER
    if org == str(referral.recipient_org_id) and principal.has_any_role(
        *PARTY_ROLES[Party.RECIPIENT]
    ):
        return Party.RECIPIENT
    return None


def reads_content(referral: Referral, party: Party | None) -> bool:
    """Whether this side may read the case file, feedback and notes of the referral.

    Once the returnee withdrew the consent a referral rested on, the recipient no longer gets
    them: withdrawal stops every further disclosure. The sender keeps its own referral.
    """
    if party is None:
        return False
    return not (party == Party.RECIPIENT and referral.status_reason == ReasonCode.CONSENT_WITHDRAWN)


def other_party(party: Party | None) -> Party:
    """The side that is told about a change `party` made."""
    return Party.SENDER if party == Party.RECIPIENT else Party.RECIPIENT


def allowed_moves(referral: Referral, party: Party | None) -> list[Status]:
    """Statuses `party` may move the referral to from where it stands."""
    current = Status(referral.status)
    return [to for (start, to), who in TRANSITIONS.items() if start == current and who == party]


def check_move(referral: Referral, target: Status, party: Party | None) -> None:
    """Refuse (409, naming the allowed moves) a move `party` may not make now."""
    if party is not None and TRANSITIONS.get((Status(referral.status), target)) == party:
        return
    allowed = allowed_moves(referral, party)
    raise IllegalTransition(
        Message(
            "A referral in status '{status}' cannot be moved to '{target}' by you. "
            "You may move it to: {allowed}.",
            status=referral.status,
            target=target,
            allowed=", ".join(allowed) or Message("nothing (no move is yours now)"),
        ),
        allowed=[str(s) for s in allowed],
    )


def require_reason(change: StatusChange) -> None:
    """Refuse a move that needs a reason code or an outcome without one."""
    if change.status in NEEDS_REASON and change.reason is None:
        raise MissingReason(
            Message(
                "Moving a referral to '{status}' needs a reason code (field 'reason'), "
                "e.g. {value}.",
                status=change.status,
                value=repr(ReasonCode.OTHER.value),
            )
        )
    if change.status == Status.COMPLETED and change.outcome is None:
        raise MissingReason(
            N_("Completing a referral needs an outcome (field 'outcome'), e.g. 'got-help'.")
        )


async def record_change(
    session: AsyncSession,
    referral: Referral,
    *,
    now: datetime,
    action: str,
    actor: Principal | None,
    request_id: str | None,
    details: dict[str, Any] | None,
    event: str,
    notify: Iterable[Party],
) -> None:
    """Bump the version, write the audit row and queue the notifications of one change."""
    referral.updated_at = now
    referral.version += 1
    await append_audit(
        session,
        action=action,
        actor=actor,
        referral_id=referral.id,
        request_id=request_id,
        details=details,
    )
    enqueue(session, referral, event, to=notify)


async def move(
    session: AsyncSession,
    referral: Referral,
    *,
    to: Status,
    reason: ReasonCode | None,
    by: Principal | None,
    now: datetime,
    action: str,
    request_id: str | None,
    details: dict[str, Any] | None,
    notify: Iterable[Party],
) -> None:
    """Move the referral along the transition table and record the change.

    `by` None is refex itself (a withdrawn consent, a missed deadline): any move of the table.
    """
    if (Status(referral.status), to) not in TRANSITIONS:
        check_move(referral, to, None)
    referral.status = str(to)
    referral.status_reason = str(reason) if reason else None
    if to == Status.RECEIVED:
        referral.acknowledged_at = now
    if to == Status.ACCEPTED:
        referral.acknowledged_at = referral.acknowledged_at or now
        referral.accepted_at = now
    if to in CLOSED_STATUSES:
        referral.closed_at = now
    await record_change(
        session,
        referral,
        now=now,
        action=action,
        actor=by,
        request_id=request_id,
        details=details,
        event="referral.status-changed",
        notify=notify,
    )
