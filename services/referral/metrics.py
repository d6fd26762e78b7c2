"""Business gauges on /metrics: referrals by status and overdue, never anything personal."""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import ColumnElement, and_, func, or_, select

from services.referral.models import Referral
from services.referral.schemas import Status
from shared.clock import utcnow
from shared.db import Database


class ReferralGauges:
    """Counts of referrals by status and of overdue ones, refreshed by a background loop."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.by_status = Gauge(
            "refex_referrals", "Referrals held, by status.", ["status"], registry=registry
        )
        self.overdue = Gauge(
            "refex_referrals_overdue",
            "Active referrals whose acknowledge or respond deadline has passed.",
            registry=registry,
        )

    async def refresh(self, database: Database) -> int:
        """Count again and publish; returns 0 so the loop waits its interval."""
        now = utcnow()
        async with database.sessionmaker() as session:
            counts = dict(
                (
                    await session.execute(
                        select(Referral.status, func.count()).group_by(Referral.status)
                    )
                ).all()
            )
            overdue = await session.scalar(
                select(func.count()).select_from(Referral).where(_overdue(now))
            )
        for status in Status:
            self.by_status.labels(str(status)).set(counts.get(str(status), 0))
        self.overdue.set(overdue or 0)
        return 0


def _overdue(now: datetime) -> ColumnElement[bool]:
    """The SQL form of service.is_overdue."""
    requested, received = str(Status.REQUESTED), str(Status.RECEIVED)
    return or_(
        and_(Referral.status == requested, Referral.acknowledge_by < now),
        and_(
            Referral.status == requested,
            Referral.acknowledge_by.is_(None),
            Referral.respond_by < now,
        ),
        and_(Referral.status == received, Referral.respond_by < now),
    )
