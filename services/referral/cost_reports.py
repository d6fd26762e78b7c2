"""The cost report: shares per programme, donor, payer, currency and settlement status.

Suppressed like every report (services/referral/reports.py): a row resting on fewer than 5
shares hides its count and its amount, and within each currency more rows are hidden until
the hidden ones are at least two and hold 5 shares or more, so the currency's total cannot
give one back.
"""

from __future__ import annotations

from itertools import groupby

from sqlalchemy.ext.asyncio import AsyncSession

from services.referral import aggregates, reports
from services.referral.aggregates import CostCell
from services.referral.cost_schemas import CostReport, CostReportRow, Settlement
from services.referral.models import CostShareLine
from services.referral.schemas import SUPPRESSED
from shared.auth import Principal
from shared.money import from_minor


def _row(cell: CostCell, hidden: bool) -> CostReportRow:
    return CostReportRow(
        programme=cell.programme,
        donor=cell.donor,
        payer_org_id=cell.payer_org_id,
        currency=cell.currency,
        status=Settlement(cell.status),
        shares=SUPPRESSED if hidden else cell.shares,
        amount=SUPPRESSED if hidden else from_minor(cell.amount_minor, cell.currency),
    )


def _total(currency: str, cells: list[CostCell]) -> CostReportRow:
    shares = sum(c.shares for c in cells)
    small = shares < reports.THRESHOLD
    return CostReportRow(
        programme=None,
        donor=None,
        payer_org_id=None,
        currency=currency,
        status=None,
        shares=SUPPRESSED if small else shares,
        amount=SUPPRESSED if small else from_minor(sum(c.amount_minor for c in cells), currency),
    )


async def cost_report(
    *, session: AsyncSession, principal: Principal, scope: reports.ReportScope
) -> CostReport:
    """The shares of the referrals the caller may count (its own, those it pays), suppressed."""
    filters = reports.scope_filters(principal, scope, also_own=[CostShareLine.payer_org_id])
    cells = await aggregates.cost_cells(session, filters=filters)
    rows: list[CostReportRow] = []
    totals: list[CostReportRow] = []
    for currency, group in groupby(sorted(cells, key=lambda c: c.currency), lambda c: c.currency):
        in_currency = list(group)
        counts = [c.shares for c in in_currency]
        hidden = reports.hidden_cells(counts, sum(counts))
        rows += [_row(cell, i in hidden) for i, cell in enumerate(in_currency)]
        totals.append(_total(currency, in_currency))
    return CostReport(
        from_date=scope.from_date,
        to_date=scope.to_date,
        programme=scope.programme,
        host_country=scope.host_country,
        threshold=reports.THRESHOLD,
        rows=rows,
        totals=totals,
    )
