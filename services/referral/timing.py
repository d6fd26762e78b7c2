"""When a referral becomes due: `start_after`, checked against now, a horizon and the consent."""

from __future__ import annotations

from datetime import datetime, timedelta

from services.referral.service import Clients
from shared.contracts.consent import BasisCheck, Decision
from shared.errors import UnprocessableContent
from shared.i18n import N_, Message

# Clocks of partners' systems drift; a time this little in the past is "now".
START_AFTER_SKEW = timedelta(minutes=5)
# A referral sent more than a year ahead rests on plans nobody can keep; send it later.
START_AFTER_HORIZON = timedelta(days=366)


class StartAfterInvalid(UnprocessableContent):
    """`start_after` is in the past, too far ahead, or after the basis for sharing ends."""

    slug = "start-after-invalid"
    title = N_("Start time not accepted")
    detail = N_("The referral's start_after is not accepted. Fix it, or leave it out.")


def check_start_after(start_after: datetime | None, now: datetime) -> None:
    """Refuse a start in the past (beyond a small skew) or beyond the horizon."""
    if start_after is None:
        return
    if start_after < now - START_AFTER_SKEW:
        raise StartAfterInvalid(
            Message(
                "start_after ({start_after}) is in the past. Leave it out to make the referral "
                "due now, or give a time in the future.",
                start_after=start_after.isoformat(),
            ),
            errors=[_error("in the past")],
        )
    if start_after > now + START_AFTER_HORIZON:
        raise StartAfterInvalid(
            Message(
                "start_after ({start_after}) is more than {days} days ahead. Send the referral "
                "closer to the returnee's arrival.",
                start_after=start_after.isoformat(),
                days=START_AFTER_HORIZON.days,
            ),
            errors=[_error("beyond the horizon")],
        )


async def check_within_basis(
    clients: Clients, decision: Decision, start_after: datetime | None, request_id: str | None
) -> None:
    """Refuse a start at or after the end of the consent (or override) the referral rests on."""
    if start_after is None:
        return
    status = await clients.consent.check_basis(
        BasisCheck(consent_ids=decision.consent_ids, override_id=decision.override_id),
        request_id=request_id,
    )
    if status.until is not None and start_after >= status.until:
        raise StartAfterInvalid(
            Message(
                "The consent (or emergency override) this referral rests on ends at {until}, "
                "before the referral would become due at {start_after}. Record a consent valid "
                "beyond that time, or choose an earlier start_after.",
                until=status.until.isoformat(),
                start_after=start_after.isoformat(),
            ),
            errors=[_error("after the basis ends")],
        )


def clock_start(now: datetime, start_after: datetime | None) -> datetime:
    """When the response clock starts: now, or start_after when that is later."""
    return max(now, start_after) if start_after is not None else now


def _error(msg: str) -> dict[str, object]:
    return {"loc": ["body", "start_after"], "msg": msg, "type": "start_after_invalid"}
