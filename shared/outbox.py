"""The one transactional outbox: lease a batch, commit, call outside any transaction, settle each.

A service writes an outbox row in the same transaction as the change it announces. This worker
claims due rows with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas never hold the
same row at once), commits, and only then calls the receiver, so a slow or hanging partner never
holds a database connection (SQLite has a single one). Calls run concurrently up to a bound, each
under a total time limit. Every outcome is settled on its own row: any failure at all counts as an
attempt and schedules the next try with jittered exponential back-off; after the last attempt
the row becomes a dead letter, listed and replayed by an admin.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Self, TypeVar

from prometheus_client import CollectorRegistry, Gauge
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import Integer, String, Uuid, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute, Mapped, mapped_column

from shared.clock import utcnow
from shared.db import UTCDateTime
from shared.errors import NotFound, ServiceError
from shared.i18n import N_
from shared.settings import ServiceSettings

logger = logging.getLogger("refex.outbox")
ERROR_CHARS = 200


class OutboxColumns:
    """The columns every outbox table has; mix into a service's declarative model."""

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dead_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(ERROR_CHARS))


class OutboxSettings(ServiceSettings):
    """Worker settings every service with an outbox shares (one naming for all of them)."""

    workers_enabled: bool = Field(
        True, description="Run this service's background workers (outbox, sweeps) in-process."
    )
    outbox_poll_interval_s: float = Field(
        1.0, gt=0, description="Seconds between outbox polls when nothing was due."
    )
    outbox_batch_size: int = Field(20, ge=1, le=500, description="Events claimed per poll.")
    outbox_concurrency: int = Field(
        8, ge=1, le=100, description="Deliveries in flight at once (to different partners)."
    )
    outbox_lease_s: float = Field(
        120.0,
        gt=0,
        description="Seconds a claimed batch stays reserved before another replica may retry it.",
    )
    outbox_max_attempts: int = Field(
        20, ge=1, description="Delivery attempts before an event becomes a dead letter."
    )
    outbox_backoff_base_s: float = Field(
        1.0, gt=0, description="Wait after the first failure; doubles per attempt, with jitter."
    )
    outbox_backoff_cap_s: float = Field(
        900.0, gt=0, description="Longest wait between two delivery attempts."
    )
    outbox_delivery_timeout_s: float = Field(
        10.0, gt=0, description="Longest time one delivery may take, connecting included."
    )
    outbox_metrics_interval_s: float = Field(
        15.0, gt=0, description="Seconds between refreshes of the outbox depth gauges."
    )

    @model_validator(mode="after")
    def _lease_outlives_a_batch(self) -> Self:
        rounds = math.ceil(self.outbox_batch_size / self.outbox_concurrency)
        if self.outbox_lease_s <= rounds * self.outbox_delivery_timeout_s:
            raise ValueError(
                f"{self.env_name('outbox_lease_s')} must be longer than a whole batch can take "
                f"({rounds} rounds of {self.outbox_delivery_timeout_s:g} s); raise it, or lower "
                "the batch size or the delivery timeout"
            )
        return self


@dataclass(frozen=True)
class OutboxPolicy:
    """How one outbox claims, retries and gives up."""

    batch_size: int = 20
    concurrency: int = 8
    lease_s: float = 120.0
    max_attempts: int = 20
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 900.0
    delivery_timeout_s: float = 10.0

    @classmethod
    def from_settings(cls, settings: OutboxSettings) -> OutboxPolicy:
        """Read the policy from a service's worker settings."""
        return cls(
            batch_size=settings.outbox_batch_size,
            concurrency=settings.outbox_concurrency,
            lease_s=settings.outbox_lease_s,
            max_attempts=settings.outbox_max_attempts,
            backoff_base_s=settings.outbox_backoff_base_s,
            backoff_cap_s=settings.outbox_backoff_cap_s,
            delivery_timeout_s=settings.outbox_delivery_timeout_s,
        )

    def backoff_s(self, attempts: int) -> float:
        """Wait after `attempts` failures: exponential, capped, with 'equal jitter'."""
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * float(2 ** min(attempts - 1, 30)))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def describe_failure(error: BaseException) -> str:
    """A short, non-personal reason for a failed delivery (no URL, no body)."""
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, ServiceError):
        return error.slug
    return type(error).__name__


class DeadLetterNotFound(NotFound):
    """No dead-lettered event has this id (it may have been replayed already)."""

    slug = "dead-letter-not-found"
    title = N_("No such dead letter")
    detail = N_(
        "No dead-lettered event has this id. List the dead letters again: it may have been "
        "replayed already, or delivered."
    )


class DeadLetterRead(BaseModel):
    """An event that exhausted its delivery attempts; ids and error codes only."""

    event_id: uuid.UUID
    event: str = Field(examples=["referral.status-changed"])
    attempts: int = Field(examples=[20])
    last_error: str | None = Field(examples=["timeout"])
    dead_at: datetime


class Replayed(BaseModel):
    """A dead letter put back in the delivery queue."""

    event_id: uuid.UUID
    status: str = Field("queued", examples=["queued"])


@dataclass(frozen=True)
class OutboxStats:
    """What the gauges show for one outbox."""

    depth: int
    oldest_pending_age_s: float
    dead_letters: int


class OutboxGauges:
    """Prometheus gauges of every outbox in one service."""

    def __init__(self, service: str, registry: CollectorRegistry | None) -> None:
        labels = ["service", "outbox"]
        self.service = service
        self.depth = Gauge(
            "refex_outbox_depth", "Events waiting for delivery.", labels, registry=registry
        )
        self.oldest = Gauge(
            "refex_outbox_oldest_pending_age_seconds",
            "Age of the oldest event still waiting for delivery.",
            labels,
            registry=registry,
        )
        self.dead = Gauge(
            "refex_outbox_dead_letters",
            "Events that exhausted their attempts and wait for an admin's replay.",
            labels,
            registry=registry,
        )

    def show(self, outbox: str, stats: OutboxStats) -> None:
        """Set the gauges of `outbox`."""
        self.depth.labels(self.service, outbox).set(stats.depth)
        self.oldest.labels(self.service, outbox).set(stats.oldest_pending_age_s)
        self.dead.labels(self.service, outbox).set(stats.dead_letters)


E = TypeVar("E", bound=OutboxColumns)
# Deliver one event; return None when the receiver took it, else a short reason. May raise.
Deliver = Callable[[E], Awaitable[str | None]]


class Outbox(Generic[E]):
    """The delivery worker and admin operations of one outbox table."""

    def __init__(
        self,
        *,
        name: str,
        model: type[E],
        enqueued_at: InstrumentedAttribute[datetime],
        sessionmaker: async_sessionmaker[AsyncSession],
        deliver: Deliver[E],
        policy: OutboxPolicy,
        gauges: OutboxGauges | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self._enqueued_at = enqueued_at
        self._sessions = sessionmaker
        self._deliver = deliver
        self.policy = policy
        self._gauges = gauges
        self._slots = asyncio.Semaphore(policy.concurrency)

    async def deliver_due(self) -> int:
        """Claim one batch of due events, deliver them, settle each; return how many."""
        events = await self._claim(utcnow())
        await asyncio.gather(*(self._deliver_one(event) for event in events))
        return len(events)

    async def _claim(self, now: datetime) -> Sequence[E]:
        model = self.model
        async with self._sessions() as session, session.begin():
            events = (
                await session.scalars(
                    select(model)
                    .where(
                        model.delivered_at.is_(None),
                        model.dead_at.is_(None),
                        model.next_attempt_at <= now,
                        or_(model.leased_until.is_(None), model.leased_until < now),
                    )
                    .order_by(model.next_attempt_at)
                    .limit(self.policy.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            lease = now + timedelta(seconds=self.policy.lease_s)
            for event in events:
                event.leased_until = lease
        return events

    async def _deliver_one(self, event: E) -> None:
        async with self._slots:
            error = await self._attempt(event)
        await self._settle(event, error)

    async def _attempt(self, event: E) -> str | None:
        try:
            async with asyncio.timeout(self.policy.delivery_timeout_s):
                return await self._deliver(event)
        except Exception as failure:  # whatever one receiver does must not stop the others
            return describe_failure(failure)

    async def _settle(self, event: E, error: str | None) -> None:
        now = utcnow()
        attempts = event.attempts + 1
        values: dict[str, Any] = {"leased_until": None, "attempts": attempts}
        if error is None:
            values.update(delivered_at=now, last_error=None)
        elif attempts >= self.policy.max_attempts:
            values.update(dead_at=now, last_error=error[:ERROR_CHARS])
            logger.warning(
                "outbox event dead-lettered",
                extra={"event": self.name, "object_id": str(event.id), "error": error},
            )
        else:
            wait = timedelta(seconds=self.policy.backoff_s(attempts))
            values.update(next_attempt_at=now + wait, last_error=error[:ERROR_CHARS])
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(self.model).where(self.model.id == event.id).values(**values)
            )

    async def stats(self) -> OutboxStats:
        """Count waiting and dead events and measure the oldest waiting one."""
        model = self.model
        async with self._sessions() as session:
            pending = (
                await session.execute(
                    select(func.count(), func.min(self._enqueued_at)).where(
                        model.delivered_at.is_(None), model.dead_at.is_(None)
                    )
                )
            ).one()
            dead = await session.scalar(
                select(func.count()).select_from(model).where(model.dead_at.is_not(None))
            )
        oldest: datetime | None = pending[1]
        age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
        return OutboxStats(
            depth=pending[0], oldest_pending_age_s=max(age, 0.0), dead_letters=dead or 0
        )

    async def refresh_gauges(self) -> int:
        """Publish the current stats on /metrics."""
        if self._gauges is not None:
            self._gauges.show(self.name, await self.stats())
        return 0


async def dead_letters(session: AsyncSession, *, model: type[E], limit: int = 500) -> Sequence[E]:
    """Dead-lettered events of `model`'s outbox, oldest first."""
    return (
        await session.scalars(
            select(model).where(model.dead_at.is_not(None)).order_by(model.dead_at).limit(limit)
        )
    ).all()


async def replay(session: AsyncSession, *, model: type[E], event_id: uuid.UUID) -> E:
    """Put a dead letter back in the queue with a fresh set of attempts."""
    event = await session.get(model, event_id, with_for_update=True)
    if event is None or event.dead_at is None:
        raise DeadLetterNotFound
    event.dead_at = None
    event.attempts = 0
    event.leased_until = None
    event.next_attempt_at = utcnow()
    return event
