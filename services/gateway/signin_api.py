"""HTTP routes of the sign-in page: GET shows it, POST checks it and sends the browser back with
an authorization code (RFC 6749 §4.1 with PKCE)."""

from __future__ import annotations

import math
import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from services.gateway import grants, oauth, pages, signin, users
from services.gateway.errors import OAuthError
from services.gateway.pages import Page
from services.gateway.ratelimit import request_address
from services.gateway.settings import GatewaySettings
from services.gateway.vault import PeopleVault
from shared.db import SessionDep
from shared.i18n import gettext, localize

router = APIRouter()
COOKIE = "refex_signin"
COOKIE_PATH = "/oauth/authorize"
COOKIE_MAX_AGE_S = 1800
BINDING_CHARS = 43
HTML = {"text/html": {"schema": {"type": "string"}, "example": "<!doctype html>…"}}
AUTHORIZE_PARAMETERS: list[dict[str, Any]] = [
    {"name": "response_type", "in": "query", "required": True, "schema": {"enum": ["code"]}},
    {"name": "client_id", "in": "query", "required": True, "example": "refex-web",
     "schema": {"type": "string"}},
    {"name": "redirect_uri", "in": "query", "required": True,
     "example": "http://127.0.0.1:8005/auth/callback", "schema": {"type": "string"}},
    {"name": "state", "in": "query", "schema": {"type": "string"}, "example": "af0ifjsldkj"},
    {"name": "code_challenge", "in": "query", "required": True, "schema": {"type": "string"},
     "example": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"},
    {"name": "code_challenge_method", "in": "query", "required": True,
     "schema": {"enum": ["S256"]}},
    {"name": "ui_locales", "in": "query", "schema": {"type": "string"}, "example": "fr",
     "description": "Language of the page (else Accept-Language)."},
]  # fmt: skip
SIGN_IN_FORM: dict[str, Any] = {
    "type": "object",
    "required": ["csrf_token", "client_id", "redirect_uri", "code_challenge"],
    "properties": {
        "email": {"type": "string"},
        "password": {"type": "string", "format": "password"},
        "totp_code": {"type": "string", "description": "Second step, with mfa_ticket."},
        "mfa_ticket": {"type": "string"},
        "csrf_token": {"type": "string"},
        **{p["name"]: p["schema"] for p in AUTHORIZE_PARAMETERS},
    },
}
PAGE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Unknown client_id or redirect_uri (never redirected)", "content": HTML},
    303: {"description": "Back to redirect_uri with `error=invalid_request` (bad PKCE or "
          "response_type), or, after a sign-in, with `code` and `state`"},
}  # fmt: skip

SIGN_IN_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The form again: wrong credentials (one message for every reason), "
          "or the second-factor step", "content": HTML},
    **PAGE_ERRORS,
    403: {"description": "The form's CSRF token does not match this browser's sign-in cookie",
          "content": HTML},
    429: {"description": "Too many attempts from this address or for this account; "
          "Retry-After says how long to wait", "content": HTML},
}  # fmt: skip


def _settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


def _vault(request: Request) -> PeopleVault:
    vault: PeopleVault = request.app.state.vault
    return vault


def _binding(request: Request) -> str | None:
    value = request.cookies.get(COOKIE)
    return value if value and len(value) == BINDING_CHARS else None


def _with_cookie(response: Response, settings: GatewaySettings, binding: str) -> Response:
    response.set_cookie(
        COOKIE,
        binding,
        max_age=COOKIE_MAX_AGE_S,
        path=COOKIE_PATH,
        secure=settings.secure_cookies,
        httponly=True,
        samesite="strict",
    )
    return response


def _refused(lang: str, message: str, status: int = 400) -> Response:
    return pages.render(Page(lang=lang, message=message), status=status)


def _form(
    request: Request,
    authz: grants.AuthorizeRequest,
    lang: str,
    binding: str,
    **shown: Any,
) -> Response:
    settings = _settings(request)
    page = Page(
        lang=lang,
        fields=authz.hidden_fields(),
        csrf_token=_vault(request).mac("csrf", binding),
        form_actions=settings.redirect_uris(),
        **shown,
    )
    return _with_cookie(pages.render(page), settings, binding)


@router.get(
    "/oauth/authorize",
    name="oauth.authorize",
    tags=["oauth"],
    summary="Show the sign-in page (OAuth 2.0 authorization code with PKCE)",
    response_class=Response,
    responses={200: {"description": "The sign-in page", "content": HTML}, **PAGE_ERRORS},
    openapi_extra={"parameters": AUTHORIZE_PARAMETERS},
)
async def authorize(request: Request) -> Response:
    """Where the workspace sends a person to sign in: an HTML form in French or English
    (`ui_locales`, else Accept-Language). After the sign-in the browser returns to the
    registered `redirect_uri` with a code the workspace exchanges at `/oauth/token` with its
    PKCE verifier. A request naming an unknown client or redirect URI gets a 400 page."""
    params = dict(request.query_params)
    lang = pages.page_language(params.get("ui_locales"))
    try:
        oauth.parse_form(oauth.FORM_MEDIA_TYPE, request.url.query.encode())
        authz = grants.checked_authorize(params, _settings(request))
    except OAuthError as error:
        return _refused(lang, localize(error.description, lang))
    except grants.AuthorizeRefused as refused:
        return _refused(lang, gettext(refused.reason, lang))
    except grants.AuthorizeError as error:
        return RedirectResponse(error.location(lang), status_code=303)
    binding = _binding(request) or secrets.token_urlsafe(32)
    return _form(request, authz, lang, binding)


def _too_many(lang: str, wait: float) -> Response:
    return pages.render(
        Page(lang=lang, message=gettext(pages.TOO_MANY, lang)),
        status=429,
        headers={"Retry-After": str(max(1, math.ceil(wait)))},
    )


async def _limited(request: Request, limiter_name: str, key: str) -> float:
    limiter = getattr(request.app.state, limiter_name)
    wait: float = await limiter.take(key)
    return wait


@router.post(
    "/oauth/authorize",
    name="oauth.signIn",
    tags=["oauth"],
    summary="Sign in (the form of the sign-in page)",
    response_class=Response,
    responses=SIGN_IN_RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {oauth.FORM_MEDIA_TYPE: {"schema": SIGN_IN_FORM}},
        }
    },
)
async def sign_in(request: Request, session: SessionDep) -> Response:
    """Check the e-mail and password (then the TOTP code when the account has one) and send
    the browser to the workspace with a single-use code valid for 60 seconds. Failures show
    the form again with one message whatever the reason; repeated failures lock the account
    for a while; attempts are limited per network address and per account."""
    settings, vault = _settings(request), _vault(request)
    try:
        form = oauth.parse_form(request.headers.get("content-type", ""), await request.body())
    except OAuthError as error:
        lang = pages.page_language(None)
        return _refused(lang, localize(error.description, lang))
    lang = pages.page_language(form.get("ui_locales"))
    try:
        authz = grants.checked_authorize(form, settings)
    except grants.AuthorizeRefused as refused:
        return _refused(lang, gettext(refused.reason, lang))
    except grants.AuthorizeError as error:
        return RedirectResponse(error.location(lang), status_code=303)
    binding = _binding(request)
    if binding is None or not vault.mac_matches(form.get("csrf_token", ""), "csrf", binding):
        return _refused(lang, gettext(pages.CSRF_REFUSED, lang), status=403)
    address = request_address(request, settings.trusted_proxy_count)
    wait = await _limited(request, "signin_address_limiter", address)
    if wait > 0:
        return _too_many(lang, wait)
    return await _attempt(request, session, form, authz, lang, binding)


async def _attempt(
    request: Request,
    session: SessionDep,
    form: dict[str, str],
    authz: grants.AuthorizeRequest,
    lang: str,
    binding: str,
) -> Response:
    settings, vault = _settings(request), _vault(request)
    user_id = signin.ticket_user(vault, form.get("mfa_ticket", ""), binding)
    if "mfa_ticket" in form and user_id is None:
        return _form(request, authz, lang, binding, message=gettext(pages.TICKET_EXPIRED, lang))
    account_key = f"user:{user_id}" if user_id else vault.email_index(form.get("email", ""))
    wait = await _limited(request, "signin_account_limiter", account_key)
    if wait > 0:
        return _too_many(lang, wait)
    if user_id is not None:
        attempt = await signin.with_code(
            session=session,
            vault=vault,
            settings=settings,
            user_id=user_id,
            code=form.get("totp_code", ""),
        )
    else:
        attempt = await signin.with_password(
            session=session,
            vault=vault,
            settings=settings,
            email=form.get("email", ""),
            password=form.get("password", ""),
        )
    return await _answer(request, session, attempt, authz, lang, binding, form.get("email", ""))


async def _answer(
    request: Request,
    session: SessionDep,
    attempt: signin.Attempt,
    authz: grants.AuthorizeRequest,
    lang: str,
    binding: str,
    email: str,
) -> Response:
    step, user = attempt.step, attempt.user
    if step is signin.Step.SIGNED_IN and user is not None:
        code = await grants.issue_code(
            session=session, request=authz, user=user, settings=_settings(request)
        )
        await users.record(session=session, user_id=user.user_id, action="user.signed-in")
        response = RedirectResponse(authz.redirect(code=code), status_code=303)
        response.delete_cookie(COOKIE, path=COOKIE_PATH)
        response.headers["Cache-Control"] = "no-store"
        return response
    if step in (signin.Step.CODE_NEEDED, signin.Step.CODE_WRONG) and user is not None:
        ticket = signin.ticket(_vault(request), user.user_id, binding)
        message = gettext(pages.CODE_WRONG, lang) if step is signin.Step.CODE_WRONG else None
        return _form(request, authz, lang, binding, ticket=ticket, message=message)
    if step is signin.Step.ADMIN_NEEDS_TOTP:
        return _form(request, authz, lang, binding, message=gettext(pages.ADMIN_NEEDS_TOTP, lang))
    return _form(request, authz, lang, binding, message=gettext(pages.REFUSED, lang), email=email)
