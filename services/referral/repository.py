"""Queries of the referral service; no HTTP and no business rules here."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from services.referral.models import (
    CostShareLine,
    IdempotencyRecord,
    Referral,
    ReferralCost,
    ReferralNote,
)
from services.referral.schemas import CLOSED_STATUSES


async def get(
    session: AsyncSession, *, referral_id: uuid.UUID, for_update: bool = False
) -> Referral | None:
    """Return the referral with this id, locked for update when asked."""
    query = select(Referral).where(Referral.id == referral_id)
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


async def lock_subject(session: AsyncSession, *, subject_digest: str) -> None:
    """Serialise creations for one subject until commit (PostgreSQL; SQLite has one writer)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            select(func.pg_advisory_xact_lock(func.hashtextextended(subject_digest, 0)))
        )


async def find_open_duplicate(
    session: AsyncSession,
    *,
    subject_digest: str,
    service_id: uuid.UUID,
    recipient_org_id: uuid.UUID,
    sender_org_id: uuid.UUID,
) -> Referral | None:
    """Return the sender's active referral for the same subject, service and recipient, if any."""
    return await session.scalar(
        select(Referral)
        .where(
            Referral.subject_digest == subject_digest,
            Referral.service_id == service_id,
            Referral.recipient_org_id == recipient_org_id,
            Referral.sender_org_id == sender_org_id,
            Referral.status.not_in([str(s) for s in CLOSED_STATUSES]),
        )
        .limit(1)
    )


async def find_idempotency(
    session: AsyncSession, *, sender_org_id: uuid.UUID, key: str
) -> IdempotencyRecord | None:
    """Return the record of an earlier request with this Idempotency-Key."""
    return await session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.sender_org_id == sender_org_id, IdempotencyRecord.key == key
        )
    )


def visible_to(org_id: uuid.UUID | None, *, auditor: bool) -> Select[Referral]:
    """Referrals an organisation is party to (all of them for auditors)."""
    query = select(Referral)
    if not auditor:
        query = query.where(
            or_(Referral.sender_org_id == org_id, Referral.recipient_org_id == org_id)
        )
    return query


def without_content(query: Select[Referral]) -> Select[Referral]:
    """Leave the JWE columns unread (the bulk of a row); touching them raises, never loads."""
    return query.options(
        defer(Referral.payload, raiseload=True), defer(Referral.feedback, raiseload=True)
    )


async def list_page(
    session: AsyncSession,
    *,
    query: Select[Referral],
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[Referral]:
    """Return up to `limit` referrals ordered by (updated_at, id), after the cursor."""
    if after is not None:
        updated_at, last_id = after
        query = query.where(
            or_(
                Referral.updated_at > updated_at,
                and_(Referral.updated_at == updated_at, Referral.id > last_id),
            )
        )
    query = query.order_by(Referral.updated_at, Referral.id).limit(limit)
    return (await session.scalars(query)).all()


async def open_for_subject(
    session: AsyncSession, *, subject_digest: str, consent_id: str
) -> Sequence[Referral]:
    """Active referrals of a subject that rest on the given consent, locked for update."""
    rows = (
        await session.scalars(
            select(Referral)
            .where(
                Referral.subject_digest == subject_digest,
                Referral.status.not_in([str(s) for s in CLOSED_STATUSES]),
            )
            .with_for_update()
        )
    ).all()
    return [row for row in rows if consent_id in row.consent_ids]


async def notes(
    session: AsyncSession, *, referral_id: uuid.UUID, with_body: bool = True
) -> Sequence[ReferralNote]:
    """Notes of a referral in the order they were written, with their JWE when asked."""
    query = (
        select(ReferralNote)
        .where(ReferralNote.referral_id == referral_id)
        .order_by(ReferralNote.created_at, ReferralNote.id)
    )
    if not with_body:
        query = query.options(defer(ReferralNote.body, raiseload=True))
    return (await session.scalars(query)).all()


async def count_notes(session: AsyncSession, *, referral_id: uuid.UUID) -> int:
    """How many notes a referral holds."""
    count = await session.scalar(
        select(func.count())
        .select_from(ReferralNote)
        .where(ReferralNote.referral_id == referral_id)
    )
    return int(count or 0)


async def cost(
    session: AsyncSession, *, referral_id: uuid.UUID, for_update: bool = False
) -> ReferralCost | None:
    """Return the referral's cost record, locked for update when asked."""
    query = select(ReferralCost).where(ReferralCost.referral_id == referral_id)
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


async def cost_lines(session: AsyncSession, *, referral_id: uuid.UUID) -> list[CostShareLine]:
    """Return the payers' shares of a referral's cost, in rule order."""
    query = (
        select(CostShareLine)
        .where(CostShareLine.referral_id == referral_id)
        .order_by(CostShareLine.basis, CostShareLine.cost_share_id)
    )
    return list((await session.scalars(query)).all())


async def is_payer(session: AsyncSession, *, referral_id: uuid.UUID, org_id: uuid.UUID) -> bool:
    """Whether the organisation pays a share of this referral's cost."""
    found = await session.scalar(
        select(CostShareLine.id)
        .where(CostShareLine.referral_id == referral_id, CostShareLine.payer_org_id == org_id)
        .limit(1)
    )
    return found is not None


async def drop_cost_lines(session: AsyncSession, *, referral_id: uuid.UUID) -> None:
    """Remove the shares of a referral's cost (before a new split)."""
    await session.execute(delete(CostShareLine).where(CostShareLine.referral_id == referral_id))
