"""HTTP routes of the cost-sharing rules of an agreement."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response

from services.directory import costs
from services.directory import service as directory
from services.directory.cost_schemas import CostShareCreate, CostShareRead, CostShareUpdate
from services.directory.dependencies import Admin, Reader, RequestId
from services.directory.paging import cursor_id, page_of
from services.directory.shaping import cost_share_read
from shared.db import SessionDep
from shared.errors import problem_responses
from shared.pagination import Page, PageParams, page_params

router = APIRouter()
Paging = Annotated[PageParams, Depends(page_params)]
IfMatch = Annotated[
    str | None,
    Header(description="ETag of the version you read; a mismatch answers 412.", examples=['"3"']),
]


@router.get(
    "/agreements/{agreement_id}/cost-shares",
    name="directory.costShares.list",
    tags=["agreements"],
    summary="An agreement's cost-share rules",
    responses=problem_responses(400, 404, 422),
)
async def list_cost_shares(
    agreement_id: uuid.UUID, session: SessionDep, principal: Reader, paging: Paging
) -> Page[CostShareRead]:
    """List who pays which share of which service category, by id.

    The agreement's parties, admins and auditors see every rule; an organisation that pays a
    share but is no party sees its own rules only; anybody else gets 404.
    """
    rows = await costs.list_cost_shares(
        session=session,
        principal=principal,
        agreement_id=agreement_id,
        after=cursor_id(paging),
        limit=paging.limit,
    )
    return page_of(Page[CostShareRead], rows, paging, cost_share_read)


@router.post(
    "/agreements/{agreement_id}/cost-shares",
    name="directory.costShares.create",
    status_code=201,
    tags=["agreements"],
    summary="Add a cost-share rule to an agreement",
    responses=problem_responses(404, 409, 422),
)
async def create_cost_share(
    agreement_id: uuid.UUID,
    share_in: CostShareCreate,
    session: SessionDep,
    admin: Admin,
    request_id: RequestId,
    response: Response,
) -> CostShareRead:
    """Say which organisation pays which share of one of the agreement's service categories
    (admins).

    `basis` is `percentage` (of what the category's fixed amounts leave, optionally capped per
    referral) or `fixed` (an amount per referral). The percentages of one category add up to
    100 at most (else 422 `cost-shares-over-100`) and its rules share one ISO 4217 currency
    (else 422 `cost-share-currency-mismatch`). Amounts are strings with at most the currency's
    decimals. `covers` says what is paid for, by language; never name a person.
    """
    share = await costs.create_cost_share(
        session=session,
        principal=admin,
        request_id=request_id,
        agreement_id=agreement_id,
        share_in=share_in,
    )
    response.headers["ETag"] = directory.etag(share)
    return cost_share_read(share)


@router.get(
    "/agreements/{agreement_id}/cost-shares/{cost_share_id}",
    name="directory.costShares.get",
    tags=["agreements"],
    summary="Read a cost-share rule",
    responses=problem_responses(404),
)
async def get_cost_share(
    agreement_id: uuid.UUID,
    cost_share_id: uuid.UUID,
    session: SessionDep,
    principal: Reader,
    response: Response,
) -> CostShareRead:
    """Return one rule with its ETag, to those who may list it; 404 otherwise."""
    share = await costs.get_cost_share(
        session=session, principal=principal, agreement_id=agreement_id, share_id=cost_share_id
    )
    response.headers["ETag"] = directory.etag(share)
    return cost_share_read(share)


@router.patch(
    "/agreements/{agreement_id}/cost-shares/{cost_share_id}",
    name="directory.costShares.update",
    tags=["agreements"],
    summary="Correct a cost-share rule",
    responses=problem_responses(404, 412, 422),
)
async def update_cost_share(
    agreement_id: uuid.UUID,
    cost_share_id: uuid.UUID,
    share_in: CostShareUpdate,
    session: SessionDep,
    admin: Admin,
    request_id: RequestId,
    response: Response,
    if_match: IfMatch = None,
) -> CostShareRead:
    """Change a rule's percentage, fixed amount, cap (null removes it), currency or what it
    covers (admins); the checks of a new rule apply. Costs already split keep their split."""
    share = await costs.update_cost_share(
        session=session,
        principal=admin,
        request_id=request_id,
        agreement_id=agreement_id,
        share_id=cost_share_id,
        share_in=share_in,
        if_match=if_match,
    )
    response.headers["ETag"] = directory.etag(share)
    return cost_share_read(share)
