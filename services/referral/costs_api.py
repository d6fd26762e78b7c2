"""HTTP routes of a referral's costs, their settlement and the cost report."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response

from services.referral import cost_reports, costs, report_formats, reports
from services.referral.api import FromDate, HostCountryQuery, ProgrammeQuery, ToDate
from services.referral.cost_schemas import (
    CostIn,
    CostReport,
    ReferralCostRead,
    SettlementChange,
)
from services.referral.costs import CostView
from services.referral.dependencies import ClientsDep, PartyContext, ReaderContext, StatsContext
from services.referral.shaping import cost_read
from shared.db import SessionDep
from shared.errors import problem_responses

router = APIRouter(tags=["costs"])
IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description="The cost's ETag you last read; 412 if it changed."),
]
CostFormat = Annotated[
    str, Query(alias="format", pattern="^(json|csv)$", description="`json` or `csv`.")
]
COST_REPORT_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "text/csv": {
                "schema": {"type": "string"},
                "example": "programme,donor,payer_org_id,currency,status,shares,amount\r\n"
                "eu-reintegration-2026,European Union,0192f000-0000-7000-8000-000000000001,"
                "EUR,paid,12,1932.00\r\n",
            }
        }
    }
}


def _answer(response: Response, view: CostView) -> ReferralCostRead:
    response.headers["ETag"] = f'"{view.cost.version}"'
    return cost_read(view.referral, view.cost, view.lines)


@router.get(
    "/referrals/reports/costs",
    name="referrals.getCostReport",
    summary="Cost shares by programme, donor, payer, currency and settlement status",
    response_model=CostReport,
    responses={**COST_REPORT_CONTENT, **problem_responses(400, 422)},
)
async def cost_report(
    session: SessionDep,
    context: StatsContext,
    from_date: FromDate = None,
    to_date: ToDate = None,
    programme: ProgrammeQuery = None,
    host_country: HostCountryQuery = None,
    output: CostFormat = "json",
) -> Response:
    """Sum the cost shares of referrals created in the period, per programme, donor, paying
    organisation, currency and status (pledged, invoiced, paid), with each currency's total.

    Admins and auditors count every referral; other organisations the referrals they sent,
    received or pay a share of. Rows resting on fewer than 5 shares show "<5" for the count
    and the amount (see `threshold`). `format=csv` downloads the same table.
    """
    scope = reports.report_scope(
        from_date=from_date, to_date=to_date, programme=programme, host_country=host_country
    )
    report = await cost_reports.cost_report(
        session=session, principal=context.principal, scope=scope
    )
    return report_formats.cost_response(report, output)


@router.get(
    "/referrals/{referral_id}/costs",
    name="referrals.costs.get",
    summary="A referral's cost and its split",
    responses=problem_responses(404),
)
async def get_costs(
    referral_id: uuid.UUID, session: SessionDep, context: ReaderContext, response: Response
) -> ReferralCostRead:
    """Return the estimated and actual cost, each payer's share and its settlement status.

    The sender, the recipient, the organisations paying a share and auditors read it; anyone
    else gets 404, as does a referral without a cost (`cost-not-recorded`).
    """
    view = await costs.read_cost(session=session, context=context, referral_id=referral_id)
    return _answer(response, view)


@router.put(
    "/referrals/{referral_id}/costs/estimate",
    name="referrals.costs.estimate",
    summary="Estimate a referral's cost",
    responses=problem_responses(403, 404, 409, 412, 422, 503, 504),
)
async def estimate_cost(
    referral_id: uuid.UUID,
    cost_in: CostIn,
    session: SessionDep,
    context: PartyContext,
    clients: ClientsDep,
    response: Response,
    if_match: IfMatch = None,
) -> ReferralCostRead:
    """Give the expected cost (the sending office); it is split by the agreement's cost-share
    rules into pledges.

    The currency must be the rules' (else 422 `cost-currency-mismatch`); amounts are strings
    with at most the currency's decimals. Once the provider recorded the actual cost the
    estimate is fixed (409 `cost-locked`).
    """
    view = await costs.set_cost(
        session=session,
        context=context,
        clients=clients,
        referral_id=referral_id,
        cost_in=cost_in,
        actual=False,
        if_match=if_match,
    )
    return _answer(response, view)


@router.put(
    "/referrals/{referral_id}/costs/actual",
    name="referrals.costs.recordActual",
    summary="Record a referral's actual cost",
    responses=problem_responses(403, 404, 409, 412, 422, 503, 504),
)
async def record_actual_cost(
    referral_id: uuid.UUID,
    cost_in: CostIn,
    session: SessionDep,
    context: PartyContext,
    clients: ClientsDep,
    response: Response,
    if_match: IfMatch = None,
) -> ReferralCostRead:
    """Record what the service cost (the provider, once it accepted the referral); the split
    is made again from the actual cost.

    Before acceptance it is 409 `cost-too-early`; once a share is invoiced, 409 `cost-locked`.
    """
    view = await costs.set_cost(
        session=session,
        context=context,
        clients=clients,
        referral_id=referral_id,
        cost_in=cost_in,
        actual=True,
        if_match=if_match,
    )
    return _answer(response, view)


@router.post(
    "/referrals/{referral_id}/costs/settlements",
    name="referrals.costs.settle",
    summary="Move a payer's share on: invoiced, then paid",
    responses=problem_responses(403, 404, 409, 422),
)
async def settle_share(
    referral_id: uuid.UUID,
    change: SettlementChange,
    session: SessionDep,
    context: PartyContext,
    response: Response,
) -> ReferralCostRead:
    """The provider marks a payer's share `invoiced` (after recording the actual cost); the
    payer then marks it `paid`. Any other step is 409 `illegal-settlement`, naming the next
    one; a step that is another party's is 403."""
    view = await costs.settle(
        session=session, context=context, referral_id=referral_id, change=change
    )
    return _answer(response, view)
