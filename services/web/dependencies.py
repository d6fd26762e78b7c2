"""Request dependencies: the browser's session, the signed-in person, the CSRF check."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request

from services.web.errors import CsrfRejected, SignedOut
from services.web.gateway import Gateway
from services.web.service import ZoneCache
from services.web.sessions import SESSION_COOKIE, Session, SessionStore
from services.web.settings import WebSettings
from shared.i18n import current_language, set_language

CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


async def get_session(request: Request) -> Session:
    """This browser's session, a new signed-out one when it has none; speak its language.

    Async on purpose: a sync dependency runs in a worker thread, and the language it set
    would stay in that thread's context.
    """
    store: SessionStore = request.app.state.sessions
    session = store.get(request.cookies.get(SESSION_COOKIE))
    if session is None:
        session = store.create()
    if session.language:
        set_language(session.language)
    return session


def get_signed_in(session: Annotated[Session, Depends(get_session)]) -> Session:
    """The session of a signed-in person; signed out: back to the start page."""
    if not session.signed_in:
        raise SignedOut()
    return session


async def check_csrf(
    request: Request, session: Annotated[Session, Depends(get_session)]
) -> Session:
    """Refuse a state-changing request without this session's CSRF token (form or header)."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        sent = str((await request.form()).get(CSRF_FIELD) or "")
    if not sent or not secrets.compare_digest(sent, session.csrf_token):
        raise CsrfRejected()
    return session


def get_gateway(request: Request) -> Gateway:
    """The app's gateway client."""
    gateway: Gateway = request.app.state.gateway
    return gateway


def get_settings(request: Request) -> WebSettings:
    """The app's settings."""
    settings: WebSettings = request.app.state.settings
    return settings


def get_zones(request: Request) -> ZoneCache:
    """The app's cache of focal points' time zones."""
    zones: ZoneCache = request.app.state.zones
    return zones


def language() -> str:
    """The language this request is answered in."""
    return current_language()


SessionDep = Annotated[Session, Depends(get_session)]
SignedInDep = Annotated[Session, Depends(get_signed_in)]
CsrfDep = Annotated[Session, Depends(check_csrf)]
GatewayDep = Annotated[Gateway, Depends(get_gateway)]
SettingsDep = Annotated[WebSettings, Depends(get_settings)]
ZonesDep = Annotated[ZoneCache, Depends(get_zones)]


def get_signed_in_form(session: Annotated[Session, Depends(check_csrf)]) -> Session:
    """A signed-in session whose request carries its CSRF token."""
    if not session.signed_in:
        raise SignedOut()
    return session


SignedInFormDep = Annotated[Session, Depends(get_signed_in_form)]
