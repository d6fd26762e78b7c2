"""Background work: deliver the outbox to partner webhooks, watch response deadlines."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import select

from services.referral.audit import append_audit
from services.referral.metrics import ReferralGauges
from services.referral.models import OutboxEvent, Referral
from services.referral.notifications import WebhookSender, enqueue
from services.referral.schemas import ReasonCode, Status
from services.referral.service import Party
from services.referral.settings import ReferralSettings
from shared.background import BackgroundRuntime
from shared.clock import utcnow
from shared.crypto import public_part
from shared.db import Database
from shared.outbox import Outbox, OutboxGauges, OutboxPolicy
from shared.webhooks import generate_signing_key

logger = logging.getLogger("refex.referral.workers")


def load_signing_key(settings: ReferralSettings) -> dict[str, Any]:
    """Read the webhook signing key; in development and tests create it on first use."""
    path: Path = settings.webhook_signing_key_file
    if path.exists():
        key: dict[str, Any] = orjson.loads(path.read_bytes())
        return key
    if settings.environment == "production":
        raise RuntimeError(
            f"{settings.env_name('webhook_signing_key_file')}: no webhook signing key at {path}; "
            "create one with `refex keys generate --use sig` and mount it there"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_signing_key()
    path.write_bytes(orjson.dumps(key))
    path.chmod(0o600)
    return key


def webhook_jwks(signing_key: dict[str, Any]) -> dict[str, Any]:
    """The public JWKS partners use to verify notifications."""
    return {"keys": [public_part(signing_key)]}


def webhook_outbox(
    database: Database,
    sender: WebhookSender,
    policy: OutboxPolicy,
    gauges: OutboxGauges | None = None,
) -> Outbox[OutboxEvent]:
    """The referral service's notification outbox, delivering through `sender`."""
    return Outbox(
        name="webhooks",
        model=OutboxEvent,
        enqueued_at=OutboxEvent.occurred_at,
        sessionmaker=database.sessionmaker,
        deliver=sender,
        policy=policy,
        gauges=gauges,
    )


async def deliver_due(
    database: Database, http: httpx.AsyncClient, signing_key: dict[str, Any], max_attempts: int
) -> int:
    """Deliver one batch of due notifications through `http`; return how many were attempted."""
    outbox = webhook_outbox(
        database, WebhookSender(http, signing_key), OutboxPolicy(max_attempts=max_attempts)
    )
    return await outbox.deliver_due()


def add_loops(
    runtime: BackgroundRuntime,
    settings: ReferralSettings,
    database: Database,
    outbox: Outbox[OutboxEvent],
    gauges: ReferralGauges,
) -> None:
    """Register the referral service's loops: notifications, the SLA sweep and the gauges."""
    grace = timedelta(hours=settings.sla_grace_hours)
    runtime.run_every("outbox", settings.outbox_poll_interval_s, outbox.deliver_due)
    runtime.run_every("outbox-gauges", settings.outbox_metrics_interval_s, outbox.refresh_gauges)
    runtime.run_every("sla", settings.sla_interval_s, lambda: sweep_deadlines(database, grace))
    runtime.run_every(
        "referral-gauges", settings.outbox_metrics_interval_s, lambda: gauges.refresh(database)
    )


async def sweep_deadlines(database: Database, grace: timedelta) -> int:
    """Remind, escalate and finally cancel referrals nobody answered in time."""
    now = utcnow()
    changed = 0
    async with database.sessionmaker() as session, session.begin():
        unanswered = (
            await session.scalars(
                select(Referral)
                .where(
                    Referral.status.in_([str(Status.REQUESTED), str(Status.RECEIVED)]),
                    Referral.acknowledge_by.is_not(None),
                    Referral.acknowledge_by < now,
                )
                .with_for_update(skip_locked=True)
            )
        ).all()
        for referral in unanswered:
            action = _deadline_action(referral, now, grace)
            if action is None:
                continue
            changed += 1
            await _take(session, referral, action, now)
    return changed


def _deadline_action(referral: Referral, now: Any, grace: timedelta) -> str | None:
    respond_by = referral.respond_by
    if respond_by is not None and now > respond_by + grace:
        return "cancel"
    if respond_by is not None and now > respond_by and referral.escalated_at is None:
        return "escalate"
    if (
        referral.status == Status.REQUESTED
        and referral.overdue_since is None
        and referral.acknowledge_by is not None
        and now > referral.acknowledge_by
    ):
        return "remind"
    return None


async def _take(session: Any, referral: Referral, action: str, now: Any) -> None:
    parties: tuple[Party, ...]
    if action == "remind":
        referral.overdue_since = now
        event, parties = "referral.reminder", (Party.RECIPIENT,)
    elif action == "escalate":
        referral.escalated_at = now
        referral.overdue_since = referral.overdue_since or now
        event, parties = "referral.escalated", (Party.RECIPIENT, Party.SENDER)
    else:
        referral.status, referral.status_reason = str(Status.CANCELLED), str(ReasonCode.NO_RESPONSE)
        referral.closed_at = now
        event, parties = "referral.status-changed", (Party.RECIPIENT, Party.SENDER)
    referral.updated_at = now
    referral.version += 1
    details = (
        {"backup_focal_point_id": referral.backup_focal_point_id} if action == "escalate" else {}
    )
    await append_audit(
        session,
        action=f"referral.sla-{action}",
        actor=None,
        referral_id=referral.id,
        request_id=None,
        details=details,
    )
    enqueue(session, referral, event, to=parties)
