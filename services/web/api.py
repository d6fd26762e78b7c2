"""The workspace's pages and the few JSON calls its scripts make (routes only)."""

from __future__ import annotations

import re
import secrets
import uuid
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import JSONResponse, Response

from services.web import oauth, service
from services.web.dependencies import (
    CsrfDep,
    GatewayDep,
    SessionDep,
    SettingsDep,
    SignedInDep,
    SignedInFormDep,
    ZonesDep,
)
from services.web.errors import (
    KeyRefused,
    NoteNotSealed,
    NotSealed,
    ReferralIncomplete,
    SignInFailed,
)
from services.web.gateway import ApiAnswer, Gateway
from services.web.pages import redirect, render
from services.web.schemas import (
    CATEGORIES,
    DATA_CATEGORIES,
    NEEDS_REASON,
    OUTCOMES,
    REASONS,
    STATUSES,
    AssignForm,
    ConsentForm,
    InboxFilter,
    NoteView,
    PublicKeyIn,
    ReferralRequestIn,
    ReferralView,
    SealedNoteIn,
    SealedReferralIn,
    StatusForm,
)
from services.web.service import ZoneCache
from services.web.sessions import LOGIN_COOKIE, LOGIN_TTL_S, Session, SessionStore
from shared.errors import PROBLEM_MEDIA_TYPE
from shared.i18n import SUPPORTED, current_language, gettext
from shared.vocabulary import Role

router = APIRouter(include_in_schema=False)


def _store(request: Request) -> SessionStore:
    store: SessionStore = request.app.state.sessions
    return store


def _local_path(value: object) -> str:
    """A path on this site to go back to; anything else (another site, `//host`) is `/`."""
    text = str(value or "/")
    # Browsers read `/\host` as `//host`: a backslash anywhere sends the person home instead.
    local = text.startswith("/") and not text.startswith("//") and "\\" not in text
    return text if local else "/"


@router.get("/")
async def home(request: Request, session: SessionDep) -> Response:
    """The start page: sign in, or the signed-in person's work."""
    if session.person is not None and Role.PROVIDER in session.person.roles:
        return redirect(request, "/inbox", session)
    if session.person is not None and Role.HOST_OFFICE in session.person.roles:
        return redirect(request, "/send", session)
    if session.person is not None and Role.COORDINATOR in session.person.roles:
        return redirect(request, "/coordinator", session)
    return render(request, "index.html", session)


@router.get("/auth/sign-in")
async def sign_in(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """Send the browser to the gateway's sign-in page (authorization code with PKCE)."""
    login_id, pending = _store(request).begin_sign_in()
    response = redirect(
        request, oauth.authorize_url(settings, pending, current_language()), session
    )
    response.set_cookie(
        LOGIN_COOKIE,
        login_id,
        max_age=LOGIN_TTL_S,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/auth/callback",
    )
    return response


@router.get("/auth/callback")
async def callback(request: Request, session: SessionDep, gateway: GatewayDep) -> Response:
    """Finish the sign-in: check the state, trade the code for tokens, start a fresh session."""
    store = _store(request)
    pending = store.finish_sign_in(request.cookies.get(LOGIN_COOKIE))
    state, code = request.query_params.get("state", ""), request.query_params.get("code", "")
    if pending is None or not code or not secrets.compare_digest(state, pending.state):
        raise SignInFailed()
    tokens = await gateway.exchange_code(code=code, pending=pending)
    person = await oauth.person_of(request.app.state.verifier, tokens.access_token)
    session = store.rotate(session)  # a new id once signed in: a planted id is worthless
    session.tokens, session.person = tokens, person
    # A page, not a redirect: the Strict cookie is then sent on the same-site navigation after.
    response = render(request, "signed_in.html", session)
    response.delete_cookie(LOGIN_COOKIE, path="/auth/callback")
    return response


@router.post("/auth/sign-out")
async def sign_out(request: Request, session: CsrfDep, gateway: GatewayDep) -> Response:
    """Revoke the refresh token at the gateway and forget the session."""
    if session.tokens is not None:
        await gateway.revoke(session.tokens)
    _store(request).delete(session)
    fresh = _store(request).create(language=session.language)
    return redirect(request, "/", fresh)


@router.post("/language")
async def choose_language(request: Request, session: CsrfDep) -> Response:
    """Remember the language this person reads the workspace in."""
    form = await request.form()
    chosen = str(form.get("lang") or "")
    if chosen in SUPPORTED:
        session.language = chosen
    return redirect(request, _local_path(form.get("next")), session)


@router.get("/inbox")
async def inbox(
    request: Request, session: SignedInDep, gateway: GatewayDep, zones: ZonesDep
) -> Response:
    """The provider's inbox: referrals addressed to the organisation, newest first."""
    return await _list_page(request, session, gateway, zones, role=Role.PROVIDER, box="received")


@router.get("/sent")
async def sent(
    request: Request, session: SignedInDep, gateway: GatewayDep, zones: ZonesDep
) -> Response:
    """The return office's sent referrals, newest first, to follow their answers."""
    return await _list_page(request, session, gateway, zones, role=Role.HOST_OFFICE, box="sent")


async def _list_page(
    request: Request,
    session: Session,
    gateway: Gateway,
    zones: ZoneCache,
    *,
    role: Role,
    box: Literal["received", "sent"],
) -> Response:
    assert session.person is not None
    service.require_role(session.person, role)
    try:
        given = {name: value for name, value in request.query_params.items() if value}
        filters = InboxFilter.model_validate(given)  # an empty field means "any"
    except ValidationError:
        filters = InboxFilter()
    found = await service.inbox(
        gateway=gateway, session=session, zones=zones, filters=filters, box=box
    )
    template = "_inbox_rows.html" if request.headers.get("hx-request") else "inbox.html"
    return render(
        request,
        template,
        session,
        inbox=found,
        filters=filters,
        box=box,
        list_path=request.url.path,
        statuses=STATUSES,
        categories=CATEGORIES,
        status_labels=service.STATUS_LABELS,
        in_zone=service.in_zone,
    )


async def _referral_page(
    request: Request,
    *,
    referral_id: uuid.UUID,
    session: Session,
    gateway: Gateway,
    zones: ZoneCache,
    problem: str = "",
    status_code: int = 200,
) -> Response:
    answer = await service.referral(gateway=gateway, session=session, referral_id=referral_id)
    if not answer.ok:
        return render(
            request,
            "error.html",
            session,
            status_code=answer.status if answer.status in (403, 404, 422) else 502,
            title=gettext("Referral not found"),
            detail=answer.problem_detail(),
        )
    view = ReferralView.model_validate(answer.body)
    zone = await zones.zone_of(gateway=gateway, session=session, service_id=view.service_id)
    listed = await service.notes(gateway=gateway, session=session, referral_id=referral_id)
    found = listed.body if listed.ok and isinstance(listed.body, list) else []
    notes = [NoteView.model_validate(note) for note in found]
    return render(
        request,
        "referral.html",
        session,
        status_code=status_code,
        referral=view,
        zone=zone,
        in_zone=service.in_zone,
        status_labels=service.STATUS_LABELS,
        move_labels=service.MOVE_LABELS,
        needs_reason=NEEDS_REASON,
        reasons=REASONS,
        outcomes=OUTCOMES,
        moved=request.query_params.get("moved") == "1",
        noted=request.query_params.get("noted") == "1",
        problem=problem,
        notes=notes,
        sealed_notes={note.id: note.body for note in notes},
        notes_problem="" if listed.ok else listed.problem_detail(),
    )


@router.get("/referrals/{referral_id}")
async def referral(
    request: Request,
    referral_id: uuid.UUID,
    session: SignedInDep,
    gateway: GatewayDep,
    zones: ZonesDep,
) -> Response:
    """One referral: metadata from the server, the case file decrypted by the browser."""
    return await _referral_page(
        request, referral_id=referral_id, session=session, gateway=gateway, zones=zones
    )


@router.post("/referrals/{referral_id}/status")
async def change_status(
    request: Request,
    referral_id: uuid.UUID,
    session: SignedInFormDep,
    gateway: GatewayDep,
    zones: ZonesDep,
) -> Response:
    """Acknowledge, accept, reject, start or complete a referral, as the API allows."""
    form = dict(await request.form())
    try:
        change = StatusForm.model_validate({k: v for k, v in form.items() if v != ""})
    except ValidationError:
        return await _referral_page(
            request,
            referral_id=referral_id,
            session=session,
            gateway=gateway,
            zones=zones,
            problem=gettext("Choose a reason or an outcome from the list, then send again."),
            status_code=422,
        )
    answer = await service.change_status(
        gateway=gateway, session=session, referral_id=referral_id, form=change
    )
    if answer.ok:
        return redirect(request, f"/referrals/{referral_id}?moved=1", session)
    return await _referral_page(
        request,
        referral_id=referral_id,
        session=session,
        gateway=gateway,
        zones=zones,
        problem=answer.problem_detail(),
        status_code=answer.status,
    )


@router.get("/referrals/{referral_id}/keys")
async def note_keys(referral_id: uuid.UUID, session: SignedInDep, gateway: GatewayDep) -> Response:
    """Both parties' keys valid now, for the browser to seal a note to (public keys only)."""
    answer = await service.note_keys(gateway=gateway, session=session, referral_id=referral_id)
    return _passed_on(answer)


@router.post("/referrals/{referral_id}/notes")
async def add_note(
    request: Request, referral_id: uuid.UUID, session: SignedInFormDep, gateway: GatewayDep
) -> Response:
    """Pass on a note sealed in the browser; a note in clear text never reaches the API."""
    try:
        note_in = SealedNoteIn.model_validate_json(await request.body())
    except ValidationError:
        raise NoteNotSealed() from None
    answer = await service.add_note(
        gateway=gateway, session=session, referral_id=referral_id, note_in=note_in
    )
    return _passed_on(answer)


@router.get("/keys")
async def keys(request: Request, session: SignedInDep, gateway: GatewayDep) -> Response:
    """The organisation's keys, and this browser's: import the JWK file or generate one here."""
    answer = await service.organisation_keys(gateway=gateway, session=session)
    registered: list[dict[str, Any]] = (
        answer.body if answer.ok and isinstance(answer.body, list) else []
    )
    return render(request, "keys.html", session, registered=registered)


@router.post("/keys")
async def register_key(request: Request, session: SignedInFormDep, gateway: GatewayDep) -> Response:
    """Register the public half of a key pair the browser generated (never a private key)."""
    try:
        jwk = PublicKeyIn.model_validate_json(await request.body())
    except ValidationError:
        raise KeyRefused() from None
    answer = await service.register_key(gateway=gateway, session=session, jwk=jwk)
    return _passed_on(answer)


async def _coordinator_page(
    request: Request,
    session: Session,
    gateway: Gateway,
    zones: ZoneCache,
    *,
    status_code: int = 200,
    **shown: Any,
) -> Response:
    desk = await service.coordinator_desk(
        gateway=gateway, session=session, zones=zones, language=current_language()
    )
    return render(
        request,
        "coordinator.html",
        session,
        status_code=status_code,
        desk=desk,
        status_labels=service.STATUS_LABELS,
        open_labels=service.OPEN_STATUS_LABELS,
        in_zone=service.in_zone,
        **shown,
    )


@router.get("/coordinator")
async def coordinator(
    request: Request, session: SignedInDep, gateway: GatewayDep, zones: ZonesDep
) -> Response:
    """The coordinator's page: the queue routed to it, its members, what it assigned."""
    assert session.person is not None
    service.require_role(session.person, Role.COORDINATOR)
    return await _coordinator_page(
        request, session, gateway, zones, assigned=request.query_params.get("assigned") == "1"
    )


@router.post("/coordinator/open/{open_id}/assign")
async def assign(
    request: Request,
    open_id: uuid.UUID,
    session: SignedInFormDep,
    gateway: GatewayDep,
    zones: ZonesDep,
) -> Response:
    """Assign an open referral to a member provider's service, as the API allows."""
    assert session.person is not None
    service.require_role(session.person, Role.COORDINATOR)
    try:
        choice = AssignForm.model_validate(dict(await request.form()))
    except ValidationError:
        problem = gettext("Choose one of your member providers' services, then assign again.")
        return await _coordinator_page(
            request, session, gateway, zones, status_code=422, problem=problem
        )
    answer = await service.assign_open_referral(
        gateway=gateway, session=session, open_id=open_id, form=choice
    )
    if answer.ok:
        return redirect(request, "/coordinator?assigned=1", session)
    return await _coordinator_page(
        request,
        session,
        gateway,
        zones,
        status_code=answer.status if answer.status in (403, 404, 409, 422, 503) else 502,
        problem=answer.problem_detail(),
    )


IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


async def _send_page(
    request: Request, session: Session, gateway: Gateway, *, status_code: int = 200, **shown: Any
) -> Response:
    found = await service.services_to_refer_to(gateway=gateway, session=session)
    return render(
        request,
        "send.html",
        session,
        status_code=status_code,
        services=found,
        data_categories=DATA_CATEGORIES,
        **shown,
    )


@router.get("/send")
async def send_page(request: Request, session: SignedInDep, gateway: GatewayDep) -> Response:
    """The return office's page: record a consent, then compose and send a referral."""
    assert session.person is not None
    service.require_role(session.person, Role.HOST_OFFICE)
    return await _send_page(request, session, gateway)


@router.post("/consents")
async def record_consent(
    request: Request, session: SignedInFormDep, gateway: GatewayDep
) -> Response:
    """Record the returnee's consent (the signed form stays here: only its SHA-256 is sent)."""
    assert session.person is not None
    service.require_role(session.person, Role.HOST_OFFICE)
    form = await request.form()
    try:
        consent_in = ConsentForm.model_validate(
            {**{k: v for k, v in form.items() if v}, "categories": form.getlist("categories")}
        )
    except ValidationError:
        problem = gettext("Fill in every field of the consent; choose at least one category.")
        return await _send_page(request, session, gateway, status_code=422, problem=problem)
    answer = await service.record_consent(gateway=gateway, session=session, form=consent_in)
    if not answer.ok:
        return await _send_page(
            request, session, gateway, status_code=answer.status, problem=answer.problem_detail()
        )
    return await _send_page(request, session, gateway, consent=answer.body)


@router.post("/send/preview")
async def preview(request: Request, session: SignedInFormDep, gateway: GatewayDep) -> Response:
    """The live preview: what would be shared and withheld, and why, and the keys to seal to."""
    try:
        request_in = ReferralRequestIn.model_validate_json(await request.body())
    except ValidationError:
        raise ReferralIncomplete() from None
    answer = await service.preview(gateway=gateway, session=session, request_in=request_in)
    return _passed_on(answer)


@router.post("/send")
async def send(request: Request, session: SignedInFormDep, gateway: GatewayDep) -> Response:
    """Pass on a referral sealed in the browser, once per idempotency key."""
    key = request.headers.get("x-idempotency-key", "")
    try:
        if not IDEMPOTENCY_KEY.fullmatch(key):
            raise ValueError(key)
        sealed_in = SealedReferralIn.model_validate_json(await request.body())
    except (ValidationError, ValueError):
        raise NotSealed() from None
    answer = await service.send_sealed(
        gateway=gateway, session=session, sealed_in=sealed_in, idempotency_key=key
    )
    return _passed_on(answer)


def _passed_on(answer: ApiAnswer) -> Response:
    """The API's answer, unchanged, to the workspace's script (a problem stays problem+json)."""
    media_type = "application/json" if answer.ok else PROBLEM_MEDIA_TYPE
    return JSONResponse(answer.body, status_code=answer.status, media_type=media_type)
