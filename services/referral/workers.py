"""Background work: deliver the outbox to partner webhooks, watch response deadlines."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import select

from services.referral import repository
from services.referral.audit import append_audit
from services.referral.models import OutboxEvent, Referral
from services.referral.schemas import ReasonCode, Status
from services.referral.service import Party, enqueue, next_attempt_delay, webhook_body
from services.referral.settings import ReferralSettings
from shared.clock import utcnow
from shared.crypto import public_part
from shared.db import Database
from shared.webhooks import SIGNATURE_HEADER, generate_signing_key, sign_body

logger = logging.getLogger("refex.referral.workers")
DELIVERY_BATCH = 50
DELIVERY_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


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


async def deliver_due(
    database: Database, http: httpx.AsyncClient, signing_key: dict[str, Any], max_attempts: int
) -> int:
    """Deliver every due notification once; return how many were attempted."""
    async with database.sessionmaker() as session, session.begin():
        events = await repository.due_outbox(session, now=utcnow(), limit=DELIVERY_BATCH)
        await asyncio.gather(*(_deliver(e, http, signing_key, max_attempts) for e in events))
        return len(events)


async def _deliver(
    event: OutboxEvent, http: httpx.AsyncClient, signing_key: dict[str, Any], max_attempts: int
) -> None:
    now = utcnow()
    if not event.webhook_url:
        event.delivered_at, event.last_error = now, "no webhook registered; partner polls"
        return
    body = webhook_body(event)
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign_body(body, signing_key),
        "X-Refex-Event-Id": str(event.id),
    }
    event.attempts += 1
    try:
        response = await http.post(event.webhook_url, content=body, headers=headers)
        failure = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    except httpx.HTTPError as error:
        failure = type(error).__name__
    if failure is None:
        event.delivered_at, event.last_error = now, None
    elif event.attempts >= max_attempts:
        event.dead_at, event.last_error = now, failure
        logger.warning("notification dead-lettered", extra={"object_id": str(event.id)})
    else:
        event.last_error = failure
        event.next_attempt_at = now + next_attempt_delay(event.attempts, random.random())


async def sweep_deadlines(database: Database, grace: timedelta) -> int:
    """Remind, escalate and finally cancel referrals nobody answered in time."""
    now = utcnow()
    changed = 0
    async with database.sessionmaker() as session, session.begin():
        open_referrals = (
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
        for referral in open_referrals:
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


async def run_periodically(name: str, interval_s: float, job: Callable[[], Awaitable[int]]) -> None:
    """Run `job` every `interval_s` seconds until cancelled; failures are logged and retried."""
    while True:
        try:
            done = await job()
        except Exception:
            logger.exception("background job failed", extra={"event": name})
            done = 0
        if not done:
            await asyncio.sleep(interval_s)
