"""Deliver withdrawal notices from the transactional outbox to the referral service.

Rows are claimed with a short lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so any number of
replicas can run the worker without sending an event twice at once; the HTTP call happens
outside any transaction. Failures wait exponentially longer, with jitter, and are never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.consent.clients import ReferralClient
from services.consent.models import OutboxEvent
from services.consent.settings import ConsentSettings
from shared.clock import utcnow
from shared.errors import ServiceError

logger = logging.getLogger("refex.consent.outbox")


def backoff_delay(attempts: int, *, base_s: float, cap_s: float) -> float:
    """Return the wait before the next try: exponential, capped, with 'equal jitter'."""
    ceiling = min(cap_s, base_s * float(2 ** min(attempts, 30)))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


@dataclass(frozen=True)
class Claimed:
    """An event this worker holds the lease on."""

    id: uuid.UUID
    payload: dict[str, Any]
    attempts: int


class OutboxWorker:
    """Claims due events, posts them, marks them delivered or schedules the next try."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[Any],
        client: ReferralClient,
        settings: ConsentSettings,
    ) -> None:
        self._sessions = sessionmaker
        self._client = client
        self._settings = settings
        self.wake = asyncio.Event()

    async def run(self) -> None:
        """Deliver until cancelled; wake early when `wake` is set."""
        while True:
            try:
                delivered = await self.deliver_due()
            except Exception:
                logger.exception("outbox round failed")
                delivered = 0
            if delivered:
                continue
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self._settings.outbox_poll_interval_s)

    async def deliver_due(self) -> int:
        """Deliver one batch of due events; return how many were delivered."""
        claimed = await self._claim(utcnow())
        delivered = 0
        for event in claimed:
            delivered += await self._deliver(event)
        return delivered

    async def _claim(self, now: datetime) -> list[Claimed]:
        lease = now + timedelta(seconds=self._settings.outbox_lease_s)
        async with self._sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(OutboxEvent.id, OutboxEvent.payload, OutboxEvent.attempts)
                    .where(
                        OutboxEvent.delivered_at.is_(None),
                        OutboxEvent.next_attempt_at <= now,
                        or_(OutboxEvent.leased_until.is_(None), OutboxEvent.leased_until < now),
                    )
                    .order_by(OutboxEvent.next_attempt_at)
                    .limit(self._settings.outbox_batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if rows:
                await session.execute(
                    update(OutboxEvent)
                    .where(OutboxEvent.id.in_([row.id for row in rows]))
                    .values(leased_until=lease)
                )
        return [Claimed(row.id, row.payload, row.attempts) for row in rows]

    async def _deliver(self, event: Claimed) -> int:
        try:
            status = await self._client.notify_withdrawal(event.payload)
            error = None if 200 <= status < 300 else f"HTTP {status}"
        except ServiceError as failure:
            error = failure.slug
        except Exception as failure:  # a broken receiver must not stop the worker
            error = type(failure).__name__
        await self._settle(event, error)
        return 1 if error is None else 0

    async def _settle(self, event: Claimed, error: str | None) -> None:
        now = utcnow()
        values: dict[str, Any] = {"leased_until": None, "attempts": event.attempts + 1}
        if error is None:
            values["delivered_at"] = now
        else:
            delay = backoff_delay(
                event.attempts,
                base_s=self._settings.outbox_backoff_base_s,
                cap_s=self._settings.outbox_backoff_cap_s,
            )
            values.update(next_attempt_at=now + timedelta(seconds=delay), last_error=error)
            logger.warning(
                "withdrawal notice not delivered; will retry",
                extra={"event_id": str(event.id), "attempts": event.attempts + 1, "error": error},
            )
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(OutboxEvent).where(OutboxEvent.id == event.id).values(**values)
            )
