"""Queries of the referral service; no HTTP and no business rules here."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from services.referral.models import (
    CostShareLine,
    IdempotencyRecord,
    OpenReferral,
    PlanItem,
    Referral,
    ReferralCost,
    ReferralNote,
    ReintegrationPlan,
)
from services.referral.schemas import CLOSED_STATUSES

SelectT = TypeVar("SelectT", bound=Select[*tuple[Any, ...]])


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
    query = keyset(query, Referral.updated_at, Referral.id, after=after, limit=limit)
    return (await session.scalars(query)).all()


def keyset(
    query: SelectT, at: Any, key: Any, *, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> SelectT:
    """Order `query` by (at, key) and keep up to `limit` rows after the cursor's (at, key)."""
    if after is not None:
        last_at, last_key = after
        query = query.where(or_(at > last_at, and_(at == last_at, key > last_key)))
    return query.order_by(at, key).limit(limit)


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


async def plan_items(
    session: AsyncSession, *, plan_ids: Sequence[uuid.UUID]
) -> Sequence[tuple[PlanItem, Referral | None]]:
    """Items of these plans in the order they were added, each with its referral's metadata."""
    query = (
        select(PlanItem, Referral)
        .outerjoin(Referral, PlanItem.referral_id == Referral.id)
        .where(PlanItem.plan_id.in_(plan_ids))
        .order_by(PlanItem.created_at, PlanItem.id)
        .options(defer(Referral.payload, raiseload=True), defer(Referral.feedback, raiseload=True))
    )
    return [(item, referral) for item, referral in (await session.execute(query)).all()]


def plans_visible_to(org_id: uuid.UUID | None, *, owner: bool) -> Select[ReintegrationPlan]:
    """Plans the organisation owns (when `owner`) or is party to through a linked referral."""
    query = select(ReintegrationPlan)
    if org_id is None:  # admins and auditors
        return query
    party_to = (
        select(PlanItem.plan_id)
        .join(Referral, PlanItem.referral_id == Referral.id)
        .where(or_(Referral.sender_org_id == org_id, Referral.recipient_org_id == org_id))
    )
    condition: ColumnElement[bool] = ReintegrationPlan.id.in_(party_to)
    if owner:
        condition = or_(ReintegrationPlan.owner_org_id == org_id, condition)
    return query.where(condition)


async def plan_page(
    session: AsyncSession,
    *,
    query: Select[ReintegrationPlan],
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[ReintegrationPlan]:
    """Up to `limit` plans ordered by (updated_at, id), after the cursor."""
    query = keyset(
        query, ReintegrationPlan.updated_at, ReintegrationPlan.id, after=after, limit=limit
    )
    return (await session.scalars(query)).all()


async def item_for_referral(session: AsyncSession, *, referral_id: uuid.UUID) -> PlanItem | None:
    """The plan item a referral is linked to, if any."""
    return await session.scalar(select(PlanItem).where(PlanItem.referral_id == referral_id))


async def plan_for_subject(
    session: AsyncSession, *, owner_org_id: uuid.UUID, digest: str
) -> ReintegrationPlan | None:
    """The owner's plan for the subject with this digest, if any."""
    return await session.scalar(
        select(ReintegrationPlan)
        .where(
            ReintegrationPlan.owner_org_id == owner_org_id,
            ReintegrationPlan.subject_digest == digest,
        )
        .limit(1)
    )


async def followed_page(
    session: AsyncSession,
    *,
    coordinator_org_id: uuid.UUID,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[tuple[OpenReferral, Referral | None]]:
    """Open referrals the coordinator assigned, oldest first, with their referral's metadata."""
    query = (
        select(OpenReferral, Referral)
        .outerjoin(Referral, OpenReferral.referral_id == Referral.id)
        .where(
            OpenReferral.coordinator_org_id == coordinator_org_id,
            OpenReferral.assigned_org_id.is_not(None),
        )
        .options(defer(Referral.payload, raiseload=True), defer(Referral.feedback, raiseload=True))
    )
    query = keyset(query, OpenReferral.created_at, OpenReferral.id, after=after, limit=limit)
    return [(row, referral) for row, referral in (await session.execute(query)).all()]


async def newly_stalled(
    session: AsyncSession, *, overdue: ColumnElement[bool]
) -> Sequence[tuple[OpenReferral, Referral]]:
    """Routed referrals matching `overdue` whose coordinator was not told yet, locked."""
    query = (
        select(OpenReferral, Referral)
        .join(Referral, OpenReferral.referral_id == Referral.id)
        .where(OpenReferral.stalled_at.is_(None), overdue)
        .options(defer(Referral.payload, raiseload=True), defer(Referral.feedback, raiseload=True))
        .with_for_update(of=OpenReferral, skip_locked=True)
    )
    return [(row, referral) for row, referral in (await session.execute(query)).all()]
