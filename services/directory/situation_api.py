"""HTTP routes of situation reports, service intake and the change feed."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from services.directory import situation
from services.directory.dependencies import Reader, RequestId, SelfService
from services.directory.paging import cursor_id, next_cursor
from services.directory.partner_schemas import (
    Feed,
    IntakeRead,
    IntakeUpdate,
    SituationReportCreate,
    SituationReportRead,
    Topic,
)
from services.directory.shaping import feed_item, intake_read, report_read
from shared.db import SessionDep
from shared.errors import problem_responses
from shared.pagination import Page, PageParams, page_params

router = APIRouter()
Paging = Annotated[PageParams, Depends(page_params)]
FEED_MEDIA_TYPE = "application/feed+json"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
# Links are the public paths at the gateway: the directory does not know its public host.
PUBLIC_BASE = "/api/v1/directory"


@router.post(
    "/situation-reports",
    name="directory.situationReports.create",
    status_code=201,
    tags=["situation reports"],
    summary="Publish a situation report",
    responses=problem_responses(403, 404, 422),
)
async def create_situation_report(
    report_in: SituationReportCreate,
    session: SessionDep,
    principal: SelfService,
    request_id: RequestId,
) -> SituationReportRead:
    """Publish a report on your own country (security, labour market, disruptions, documents).

    Give `series_id` to publish a new version of an earlier report; the older version stays
    readable with `current: false`. Partners in that country and partners holding an agreement
    with a provider there see it, and it appears in `GET /changes/feed`. Write about
    organisations and places only, never about a returnee.
    """
    report = await situation.publish_report(
        session=session, principal=principal, request_id=request_id, report_in=report_in
    )
    return report_read(report, report.version)


@router.get(
    "/situation-reports",
    name="directory.situationReports.list",
    tags=["situation reports"],
    summary="List situation reports",
    responses=problem_responses(400, 422),
)
async def list_situation_reports(
    session: SessionDep,
    principal: Reader,
    paging: Paging,
    country: Annotated[str | None, Query(examples=["NG"], min_length=2, max_length=2)] = None,
    topic: Topic | None = None,
) -> Page[SituationReportRead]:
    """List the situation reports you may see, newest first (every version; see `current`)."""
    rows, latest = await situation.list_reports(
        session=session,
        principal=principal,
        country=country,
        topic=topic,
        before=cursor_id(paging),
        limit=paging.limit,
    )
    items = [report_read(row, latest[row.series_id]) for row in rows]
    return Page[SituationReportRead](items=items, next_cursor=next_cursor(rows, paging))


@router.get(
    "/situation-reports/{report_id}",
    name="directory.situationReports.get",
    tags=["situation reports"],
    summary="Read a situation report",
    responses=problem_responses(404),
)
async def get_situation_report(
    report_id: uuid.UUID, session: SessionDep, principal: Reader
) -> SituationReportRead:
    """Return one report version; 404 unless your organisation may see its country's reports."""
    report, latest = await situation.get_report(
        session=session, principal=principal, report_id=report_id
    )
    return report_read(report, latest)


@router.get(
    "/services/{service_id}/intake",
    name="directory.services.getIntake",
    tags=["services"],
    summary="Is the service taking people in?",
    responses=problem_responses(404),
)
async def get_service_intake(
    service_id: uuid.UUID, session: SessionDep, _principal: Reader
) -> IntakeRead:
    """Return what the provider last said: open, limited or temporarily closed, waiting, places."""
    return intake_read(await situation.get_intake(session=session, service_id=service_id))


@router.put(
    "/services/{service_id}/intake",
    name="directory.services.setIntake",
    tags=["services"],
    summary="State your service's intake",
    responses=problem_responses(403, 404, 422),
)
async def set_service_intake(
    service_id: uuid.UUID,
    intake_in: IntakeUpdate,
    session: SessionDep,
    principal: SelfService,
    request_id: RequestId,
) -> IntakeRead:
    """Say whether your service takes people in now, the waiting time and the places left.

    Search flags every hit with this (`intake_status`) and `available=true` leaves out the
    services marked `temporarily_closed`. Host offices follow changes at `GET /changes/feed`.
    """
    intake = await situation.set_intake(
        session=session,
        principal=principal,
        request_id=request_id,
        service_id=service_id,
        intake_in=intake_in,
    )
    return intake_read(intake)


@router.get(
    "/changes/feed",
    name="directory.changes.feed",
    tags=["situation reports"],
    summary="Follow what changed (JSON Feed)",
    response_model_by_alias=True,
    responses={
        200: {"content": {FEED_MEDIA_TYPE: {}}},
        **problem_responses(400, 422),
    },
)
async def change_feed(session: SessionDep, principal: Reader, paging: Paging) -> Feed:
    """The situation reports and service-intake changes you may see, newest first (JSON Feed 1.1).

    Each item's `_refex.event` is `situation-report.published` or `service.intake-changed`,
    with the ids it concerns. Poll it with `next_url` for older items; the directory sends no
    webhook for these events.
    """
    rows, reports = await situation.feed(
        session=session, principal=principal, before=cursor_id(paging), limit=paging.limit
    )
    cursor = next_cursor(rows, paging)
    feed_url = f"{PUBLIC_BASE}/changes/feed"
    return Feed(
        version=JSON_FEED_VERSION,
        title="refex directory changes",
        feed_url=feed_url,
        next_url=f"{feed_url}?limit={paging.limit}&cursor={cursor}" if cursor else None,
        items=[feed_item(row, reports, PUBLIC_BASE) for row in rows],
    )
