"""Withdrawal notices: the consent service's outbox (shared.outbox), delivered to referral.

A withdrawal writes its notice in the same transaction; the shared worker leases it, calls the
referral service outside any transaction, and retries with back-off until it is taken or
dead-lettered for an admin to replay.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.consent.clients import ReferralClient
from services.consent.models import OutboxEvent
from shared.contracts.consent import WithdrawalNotice
from shared.outbox import Deliver, Outbox, OutboxGauges, OutboxPolicy


def withdrawal_sender(client: ReferralClient) -> Deliver[OutboxEvent]:
    """Deliver one withdrawal notice to the referral service's internal endpoint."""

    async def deliver(event: OutboxEvent) -> str | None:
        status = await client.notify_withdrawal(WithdrawalNotice.model_validate(event.payload))
        return None if 200 <= status < 300 else f"HTTP {status}"

    return deliver


def withdrawal_outbox(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: ReferralClient,
    policy: OutboxPolicy,
    gauges: OutboxGauges | None = None,
) -> Outbox[OutboxEvent]:
    """The outbox of withdrawal notices."""
    return Outbox(
        name="withdrawals",
        model=OutboxEvent,
        enqueued_at=OutboxEvent.created_at,
        sessionmaker=sessionmaker,
        deliver=withdrawal_sender(client),
        policy=policy,
        gauges=gauges,
    )
