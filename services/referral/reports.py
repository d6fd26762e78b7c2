"""Reports partners and donors can publish: figures per period and group, small counts hidden.

Suppression (statistical disclosure control), so nobody can be singled out:
- primary: every count under `THRESHOLD` (5), zero included, shows as "<5";
- derived: a median, p90 or mean over fewer than `THRESHOLD` values shows as "<5", and so do
  the derived figures of a row whose `sent` is hidden;
- secondary: rows partition the total, so in each column the next smallest rows are hidden
  too until at least two are hidden and the hidden ones add up to 5 or more; total minus the
  visible rows then reveals only such a sum, never one cell (nor that several are all zero).
Two reports over overlapping periods can still be subtracted from each other; publish one
period grid (month, quarter or year) per audience.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import or_
from sqlalchemy.ext.asyncio import AsyncSession

from services.referral import aggregates
from services.referral.aggregates import Cell
from services.referral.models import Referral
from services.referral.schemas import (
    SUPPRESSED,
    Period,
    ReferralReport,
    ReportDimension,
    ReportRow,
    Scorecard,
    ScorecardMonth,
    ScorecardPage,
)
from shared.auth import Principal
from shared.clock import utcnow
from shared.errors import BadRequest, ValidationFailed
from shared.i18n import N_, Message
from shared.vocabulary import Role

THRESHOLD = 5


@dataclass(frozen=True)
class ReportScope:
    """Which referrals a report counts: created in [starts_at, ends_at), optionally narrowed."""

    from_date: date
    to_date: date
    starts_at: datetime
    ends_at: datetime
    programme: str | None = None
    host_country: str | None = None


MAX_DAYS = 3660
Shown = int | float | str | None


def dimensions(values: Sequence[str] | None) -> list[ReportDimension]:
    """Parse `group_by` (comma-separated or repeated), refusing unknown dimensions by name."""
    names = [part.strip() for value in values or [] for part in value.split(",") if part.strip()]
    known = {d.value: d for d in ReportDimension}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValidationFailed(
            Message(
                "Cannot group by {unknown}. Choose among: {known}.",
                unknown=", ".join(unknown),
                known=", ".join(known),
            ),
            errors=[{"loc": ["query", "group_by"], "msg": "unknown dimension", "type": "enum"}],
        )
    return [known[name] for name in dict.fromkeys(names)]


def scope_filters(
    principal: Principal, scope: ReportScope, *, also_own: Sequence[Any] = ()
) -> list[Any]:
    """The referrals a caller may count: all for admins and auditors, else its own.

    `also_own` are further columns naming the caller's organisation (a cost share's payer).
    """
    filters: list[Any] = [
        Referral.created_at >= scope.starts_at,
        Referral.created_at < scope.ends_at,
    ]
    if scope.programme is not None:
        filters.append(Referral.programme == scope.programme)
    if scope.host_country is not None:
        filters.append(Referral.host_country == scope.host_country)
    if not principal.has_any_role(Role.ADMIN, Role.AUDITOR):
        org = uuid.UUID(principal.org_id)
        mine = [Referral.sender_org_id, Referral.recipient_org_id, *also_own]
        filters.append(or_(*(column == org for column in mine)))
    return filters


def report_scope(
    *,
    from_date: date | None,
    to_date: date | None,
    programme: str | None,
    host_country: str | None,
) -> ReportScope:
    """The period to count (default: this calendar year so far), `to` included."""
    today = utcnow().date()
    first = from_date or date(today.year, 1, 1)
    last = to_date or today
    if last < first:
        raise BadRequest(N_("'to' is before 'from'; give an end date on or after the start date."))
    if (last - first).days > MAX_DAYS:
        raise BadRequest(N_("A report covers at most ten years; narrow 'from' and 'to'."))
    return ReportScope(
        from_date=first,
        to_date=last,
        starts_at=datetime.combine(first, time(), UTC),
        ends_at=datetime.combine(last + timedelta(days=1), time(), UTC),
        programme=programme,
        host_country=host_country,
    )


async def report(
    *,
    session: AsyncSession,
    principal: Principal,
    scope: ReportScope,
    period: Period,
    group_by: Sequence[ReportDimension],
) -> ReferralReport:
    """Figures per period and group over the referrals the caller may count, suppressed."""
    dimensions = list(dict.fromkeys(str(d) for d in group_by))
    filters = scope_filters(principal, scope)
    rows = await aggregates.cells(
        session, filters=filters, period=str(period), dimensions=dimensions
    )
    totals = await aggregates.cells(session, filters=filters, period=None, dimensions=[])
    total = totals.get(("total",), Cell())
    ordered = sorted(rows.items(), key=lambda item: tuple(_sortable(v) for v in item[0]))
    shown = suppress([cell for _, cell in ordered], total)
    return ReferralReport(
        period=period,
        from_date=scope.from_date,
        to_date=scope.to_date,
        programme=scope.programme,
        host_country=scope.host_country,
        group_by=[ReportDimension(d) for d in dimensions],
        threshold=THRESHOLD,
        rows=[
            _row(key[0], dict(zip(dimensions, _labels(key[1:]), strict=True)), figures)
            for (key, _), figures in zip(ordered, shown[:-1], strict=True)
        ],
        total=_row("total", {}, shown[-1]),
    )


def _sortable(value: Any) -> tuple[bool, str]:
    return (value is None, "" if value is None else str(value))


def _labels(values: Iterable[Any]) -> list[str | None]:
    return [None if v is None else str(v) for v in values]


COUNT_FIELDS = (
    "sent",
    "acknowledged_on_time",
    "accepted_on_time",
    "feedback_responses",
)
# Each derived figure and the count of values it rests on.
DERIVED_FIELDS = {
    "median_hours_to_acknowledge": "acknowledged",
    "p90_hours_to_acknowledge": "acknowledged",
    "median_hours_to_accept": "accepted",
    "p90_hours_to_accept": "accepted",
    "mean_feedback_score": "feedback_responses",
}


def _columns(cells: Sequence[Cell]) -> list[tuple[str, Callable[[Cell], int]]]:
    """Every count column of the report: fixed figures, each outcome, each withheld pair."""
    columns = [(name, _field_count(name)) for name in COUNT_FIELDS]
    outcomes = sorted({o for c in cells for o in c.outcomes})
    withheld = sorted({w for c in cells for w in c.withheld})
    columns += [(f"outcome:{o}", _entry_count("outcomes", o)) for o in outcomes]
    columns += [(f"withheld:{w}", _entry_count("withheld", w)) for w in withheld]
    return columns


def _field_count(name: str) -> Callable[[Cell], int]:
    return lambda cell: int(getattr(cell, name))


def _entry_count(mapping: str, key: str) -> Callable[[Cell], int]:
    return lambda cell: int(getattr(cell, mapping).get(key, 0))


def hidden_cells(values: Sequence[int], total: int) -> set[int]:
    """Indexes of the rows to hide in one column: primary, then secondary suppression."""
    hidden = {i for i, v in enumerate(values) if v < THRESHOLD}
    by_size = sorted(range(len(values)), key=lambda i: values[i])
    while hidden and total >= THRESHOLD and _too_revealing(values, hidden):
        hidden.add(next(i for i in by_size if i not in hidden))
    return hidden


def _too_revealing(values: Sequence[int], hidden: set[int]) -> bool:
    """Total minus the visible rows would give back one hidden cell, or a sum under 5."""
    return len(hidden) < 2 or sum(values[i] for i in hidden) < THRESHOLD


def suppress(cells: Sequence[Cell], total: Cell) -> list[dict[str, Shown]]:
    """The figures to publish for each row and, last, the total, with small cells hidden."""
    everything = [*cells, total]
    shown: list[dict[str, Shown]] = [{} for _ in everything]
    for name, value_of in _columns(everything):
        values = [value_of(c) for c in cells]
        hidden = hidden_cells(values, value_of(total))
        for i, value in enumerate([*values, value_of(total)]):
            is_total = i == len(cells)
            small = value < THRESHOLD if is_total else i in hidden
            shown[i][name] = SUPPRESSED if small else value
    for figures, cell in zip(shown, everything, strict=True):
        for name, basis in DERIVED_FIELDS.items():
            small = figures["sent"] == SUPPRESSED or int(getattr(cell, basis)) < THRESHOLD
            figures[name] = SUPPRESSED if small else getattr(cell, name)
    return shown


def _row(period: str, group: dict[str, str | None], figures: dict[str, Shown]) -> ReportRow:
    outcomes = {k.split(":", 1)[1]: v for k, v in figures.items() if k.startswith("outcome:")}
    withheld = {k.split(":", 1)[1]: v for k, v in figures.items() if k.startswith("withheld:")}
    plain = {k: v for k, v in figures.items() if ":" not in k}
    return ReportRow.model_validate(
        {"period": period, "group": group, **plain, "outcomes": outcomes, "withheld": withheld}
    )


async def scorecards(
    *, session: AsyncSession, principal: Principal, scope: ReportScope
) -> ScorecardPage:
    """Each provider's response-time performance per month, suppressed like every report."""
    monthly = await report(
        session=session,
        principal=principal,
        scope=scope,
        period=Period.MONTH,
        group_by=[ReportDimension.PARTNER],
    )
    by_partner: dict[str, list[ScorecardMonth]] = {}
    for row in monthly.rows:
        partner = row.group.get("partner") or "unknown"
        by_partner.setdefault(partner, []).append(
            ScorecardMonth(
                period=row.period,
                sent=row.sent,
                acknowledged_on_time_pct=_share(row.acknowledged_on_time, row.sent),
                accepted_on_time_pct=_share(row.accepted_on_time, row.sent),
                median_hours_to_acknowledge=row.median_hours_to_acknowledge,
            )
        )
    return ScorecardPage(
        from_date=scope.from_date,
        to_date=scope.to_date,
        threshold=THRESHOLD,
        items=[Scorecard(partner_org_id=p, months=m) for p, m in sorted(by_partner.items())],
    )


def _share(part: int | str, whole: int | str) -> float | str | None:
    """A percentage, hidden when either count is: it would give the hidden count back."""
    if isinstance(part, str) or isinstance(whole, str):
        return SUPPRESSED
    return round(100 * part / whole, 1) if whole else None
