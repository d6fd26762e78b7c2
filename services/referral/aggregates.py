"""Report figures aggregated by the database (SQLite and PostgreSQL); no rules, no HTTP.

Every query reads one inner selection of the referrals in scope, with the period label, the
grouping columns and the derived hours computed per row, so both backends group by plain
columns. Percentiles are nearest-rank (the value at rank ceil(p * n)) through window
functions, which both backends have; neither has to ship rows to Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    String,
    Subquery,
    and_,
    case,
    cast,
    extract,
    func,
    literal,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.referral.models import CostShareLine, Referral
from services.referral.schemas import Outcome, Status

DIMENSIONS: dict[str, Any] = {
    "programme": Referral.programme,
    "donor": Referral.donor,
    "host_country": Referral.host_country,
    "origin_country": Referral.origin_country,
    "area": Referral.origin_area,
    "partner": Referral.recipient_org_id,
    "category": Referral.service_category,
    "outcome": Referral.outcome,
}
Key = tuple[Any, ...]


@dataclass
class Cell:
    """The raw figures of one (period, group) cell, before any suppression."""

    sent: int = 0
    acknowledged_on_time: int = 0
    accepted_on_time: int = 0
    acknowledged: int = 0
    accepted: int = 0
    median_hours_to_acknowledge: float | None = None
    p90_hours_to_acknowledge: float | None = None
    median_hours_to_accept: float | None = None
    p90_hours_to_accept: float | None = None
    feedback_responses: int = 0
    mean_feedback_score: float | None = None
    outcomes: dict[str, int] = field(default_factory=dict)
    withheld: dict[str, int] = field(default_factory=dict)


def _period_label(dialect: str, period: str | None) -> ColumnElement[str]:
    at = Referral.created_at
    if period is None:
        return literal("total")
    if dialect == "postgresql":
        utc = func.timezone("UTC", at)
        formats = {"month": "YYYY-MM", "year": "YYYY", "quarter": 'YYYY-"Q"Q'}
        return func.to_char(utc, formats[period])
    if period == "quarter":
        month = cast(func.strftime("%m", at), Integer)
        year = type_coerce(func.strftime("%Y", at), String)
        return year + "-Q" + cast(cast((month + 2) / 3, Integer), String)
    return func.strftime("%Y-%m" if period == "month" else "%Y", at)


def _hours(dialect: str, end: Any, start: Any) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return extract("epoch", end - start) / 3600.0
    return (func.julianday(end) - func.julianday(start)) * 24.0


def _hours_since_due(dialect: str, end: Any) -> ColumnElement[Any]:
    """Hours from when the referral became due (start_after, if later than its sending) to
    `end`; a referral answered while it was not due yet took 0 hours."""
    due = case(
        (Referral.start_after > Referral.created_at, Referral.start_after),
        else_=Referral.created_at,
    )
    hours = _hours(dialect, end, due)
    return case((hours < 0, 0.0), else_=hours)


def _on_time(done: Any, due: Any) -> ColumnElement[int]:
    return case((and_(done.is_not(None), due.is_not(None), done <= due), 1), else_=0)


def _inner(
    dialect: str, filters: Sequence[Any], period: str | None, dimensions: Sequence[str]
) -> Subquery:
    columns: list[Any] = [_period_label(dialect, period).label("period")]
    columns += [DIMENSIONS[name].label(f"d_{name}") for name in dimensions]
    columns += [
        _hours_since_due(dialect, Referral.acknowledged_at).label("ack_h"),
        _hours_since_due(dialect, Referral.accepted_at).label("acc_h"),
        _on_time(Referral.acknowledged_at, Referral.acknowledge_by).label("ack_ok"),
        _on_time(Referral.accepted_at, Referral.respond_by).label("acc_ok"),
        Referral.outcome.label("outcome"),
        Referral.feedback_score.label("score"),
        Referral.withheld.label("withheld"),
    ]
    return select(*columns).where(*filters).subquery("scoped")


def _keys(inner: Subquery, dimensions: Sequence[str]) -> list[Any]:
    return [inner.c.period, *(inner.c[f"d_{name}"] for name in dimensions)]


async def _counts(session: AsyncSession, inner: Subquery, keys: list[Any]) -> dict[Key, Cell]:
    outcome_sums = [
        func.sum(case((inner.c.outcome == str(o), 1), else_=0)).label(f"o_{i}")
        for i, o in enumerate(Outcome)
    ]
    query = select(
        *keys,
        func.count().label("sent"),
        func.sum(inner.c.ack_ok).label("ack_ok"),
        func.sum(inner.c.acc_ok).label("acc_ok"),
        func.count(inner.c.ack_h).label("ack_n"),
        func.count(inner.c.acc_h).label("acc_n"),
        func.count(inner.c.score).label("score_n"),
        func.avg(cast(inner.c.score, Float)).label("score_mean"),
        *outcome_sums,
    ).group_by(*keys)
    cells: dict[Key, Cell] = {}
    width = len(keys)
    for row in await session.execute(query):
        values = row._mapping
        cells[tuple(row[:width])] = Cell(
            sent=int(values["sent"]),
            acknowledged_on_time=int(values["ack_ok"] or 0),
            accepted_on_time=int(values["acc_ok"] or 0),
            acknowledged=int(values["ack_n"]),
            accepted=int(values["acc_n"]),
            feedback_responses=int(values["score_n"]),
            mean_feedback_score=_rounded(values["score_mean"]),
            outcomes={str(o): int(values[f"o_{i}"] or 0) for i, o in enumerate(Outcome)},
        )
    return cells


def _rank_window(value: Any, keys: list[Any]) -> tuple[Any, Any]:
    """Rank of each value among its cell's (nulls last) and how many non-null values it has."""
    order = (case((value.is_(None), 1), else_=0), value)
    rank = func.row_number().over(partition_by=keys, order_by=order)
    return rank, func.count(value).over(partition_by=keys)


def _at_rank(value: Any, rank: Any, n: Any, share: float) -> Any:
    """Pick the value whose rank is ceil(share * n): rank >= share*n and rank - 1 < share*n."""
    hit = and_(rank >= n * share, rank - 1 < n * share)
    return func.max(case((hit, value), else_=None))


async def _percentiles(session: AsyncSession, inner: Subquery, keys: list[Any]) -> dict[Key, Any]:
    ack_rank, ack_n = _rank_window(inner.c.ack_h, keys)
    acc_rank, acc_n = _rank_window(inner.c.acc_h, keys)
    ranked = select(
        *keys,
        inner.c.ack_h,
        inner.c.acc_h,
        ack_rank.label("ack_rank"),
        ack_n.label("ack_n"),
        acc_rank.label("acc_rank"),
        acc_n.label("acc_n"),
    ).subquery("ranked")
    outer_keys = [ranked.c[key.name] for key in keys]
    r = ranked.c
    query = select(
        *outer_keys,
        _at_rank(r.ack_h, r.ack_rank, r.ack_n, 0.5),
        _at_rank(r.ack_h, r.ack_rank, r.ack_n, 0.9),
        _at_rank(r.acc_h, r.acc_rank, r.acc_n, 0.5),
        _at_rank(r.acc_h, r.acc_rank, r.acc_n, 0.9),
    ).group_by(*outer_keys)
    width = len(keys)
    return {
        tuple(row[:width]): tuple(_rounded(v) for v in row[width:])
        for row in await session.execute(query)
    }


async def _withheld(
    session: AsyncSession, dialect: str, inner: Subquery, keys: list[Any]
) -> dict[Key, dict[str, int]]:
    if dialect == "postgresql":
        each = func.jsonb_each_text(inner.c.withheld).table_valued("key", "value").lateral()
    else:
        each = func.json_each(inner.c.withheld).table_valued("key", "value")
    query = (
        select(*keys, each.c.key, each.c.value, func.count())
        .select_from(inner)
        .join(each, true())
        .group_by(*keys, each.c.key, each.c.value)
    )
    width = len(keys)
    found: dict[Key, dict[str, int]] = {}
    for row in await session.execute(query):
        category, reason, count = row[width:]
        found.setdefault(tuple(row[:width]), {})[f"{category}:{reason}"] = int(count)
    return found


async def cells(
    session: AsyncSession,
    *,
    filters: Sequence[Any],
    period: str | None,
    dimensions: Sequence[str],
) -> dict[Key, Cell]:
    """Return the raw figures of every (period, group) cell with at least one referral."""
    dialect = session.get_bind().dialect.name
    inner = _inner(dialect, filters, period, dimensions)
    keys = _keys(inner, dimensions)
    counted = await _counts(session, inner, keys)
    ranks = await _percentiles(session, inner, keys)
    withheld = await _withheld(session, dialect, inner, keys)
    for key, cell in counted.items():
        (
            cell.median_hours_to_acknowledge,
            cell.p90_hours_to_acknowledge,
            cell.median_hours_to_accept,
            cell.p90_hours_to_accept,
        ) = ranks.get(key, (None, None, None, None))
        cell.withheld = withheld.get(key, {})
    return counted


def _rounded(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


def overdue_condition(now: Any) -> ColumnElement[bool]:
    """SQL form of `sla.is_overdue`: the next deadline of an open referral has passed."""
    requested, received = str(Status.REQUESTED), str(Status.RECEIVED)
    waits_for_ack = and_(Referral.status == requested, Referral.acknowledge_by.is_not(None))
    return or_(
        and_(waits_for_ack, Referral.acknowledge_by < now),
        and_(
            Referral.status.in_([requested, received]),
            ~waits_for_ack,
            Referral.respond_by.is_not(None),
            Referral.respond_by < now,
        ),
    )


async def counts_by(
    session: AsyncSession, *, filters: Sequence[Any], column: Any
) -> dict[Any, int]:
    """How many referrals in scope have each value of `column`."""
    query = select(column, func.count()).where(*filters).group_by(column)
    return {value: int(count) for value, count in await session.execute(query)}


async def count(session: AsyncSession, *, filters: Sequence[Any]) -> int:
    """How many referrals in scope match every filter."""
    return int(
        await session.scalar(select(func.count()).select_from(Referral).where(*filters)) or 0
    )


@dataclass(frozen=True)
class CostCell:
    """Shares and their sum (minor units) of one programme, donor, payer, currency, status."""

    programme: str | None
    donor: str | None
    payer_org_id: Any
    currency: str
    status: str
    shares: int
    amount_minor: int


async def cost_cells(session: AsyncSession, *, filters: Sequence[Any]) -> list[CostCell]:
    """Sum the cost shares of the referrals in scope per programme, donor, payer, currency and
    settlement status, in that order."""
    keys = (
        Referral.programme,
        Referral.donor,
        CostShareLine.payer_org_id,
        CostShareLine.currency,
        CostShareLine.status,
    )
    query = (
        select(*keys, func.count(CostShareLine.id), func.sum(CostShareLine.amount_minor))
        .join(Referral, Referral.id == CostShareLine.referral_id)
        .where(*filters)
        .group_by(*keys)
        .order_by(*keys)
    )
    return [
        CostCell(programme, donor, payer, currency, status, int(count), int(total or 0))
        for programme, donor, payer, currency, status, count, total in await session.execute(query)
    ]
