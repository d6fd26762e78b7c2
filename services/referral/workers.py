"""Background work: deliver the outbox to partner webhooks, watch response deadlines."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from services.referral.following import sweep_stalled
from services.referral.metrics import ReferralGauges
from services.referral.models import OutboxEvent
from services.referral.notifications import WebhookSender
from services.referral.settings import ReferralSettings
from services.referral.sla import sweep_deadlines
from shared.background import BackgroundRuntime
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
    """Register the referral service's loops: notifications, the SLA and stall sweeps, gauges."""
    grace = timedelta(hours=settings.sla_grace_hours)
    runtime.run_every("outbox", settings.outbox_poll_interval_s, outbox.deliver_due)
    runtime.run_every("outbox-gauges", settings.outbox_metrics_interval_s, outbox.refresh_gauges)
    runtime.run_every("sla", settings.sla_interval_s, lambda: sweep_deadlines(database, grace))
    runtime.run_every("stalled", settings.sla_interval_s, lambda: sweep_stalled(database))
    runtime.run_every(
        "referral-gauges", settings.outbox_metrics_interval_s, lambda: gauges.refresh(database)
    )
