"""Rendering: the Jinja2 environment, the session cookie, security headers, HTML error pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from services.web.errors import SignedOut
from services.web.sessions import SESSION_COOKIE, Session
from services.web.settings import WebSettings
from shared.errors import ServiceError, problem_response
from shared.i18n import SUPPORTED, current_language, gettext

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


class CachedStatic(StaticFiles):
    """The vendored libraries, scripts and styles, cached by browsers for a day (ETag after)."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        """Serve a file with a Cache-Control header."""
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "public, max-age=86400"
        return response


def _text(msgid: str, **params: Any) -> str:
    """A page text in the reader's language, `{placeholders}` filled (refex's catalog style)."""
    text = gettext(msgid)
    return text.format(**params) if params else text


def build_environment() -> Environment:
    """The template environment; `gettext` in templates is refex's catalog."""
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals["gettext"] = _text
    environment.globals["languages"] = SUPPORTED
    return environment


def security_headers(settings: WebSettings) -> dict[str, str]:
    """Headers every page carries: scripts only from here, no framing, no referrer leaks."""
    policy = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self'; form-action 'self' {settings.browser_gateway_url}; "
        "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


def with_session_cookie(response: Response, session: Session, settings: WebSettings) -> Response:
    """Attach the session cookie (HttpOnly, SameSite=Strict, Secure outside development)."""
    response.set_cookie(
        SESSION_COOKIE,
        session.session_id,
        max_age=settings.session_ttl_s,
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookies,
        path="/",
    )
    return response


def _here(request: Request) -> str:
    """This page's path and query, to come back to after a form elsewhere."""
    if request.url.path.startswith("/auth/"):
        return "/"  # never echo an authorization code or state into a page
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def render(
    request: Request,
    template: str,
    session: Session,
    *,
    status_code: int = 200,
    **context: Any,
) -> Response:
    """Render a page for this session."""
    settings: WebSettings = request.app.state.settings
    environment: Environment = request.app.state.templates
    html = environment.get_template(template).render(
        lang=current_language(),
        session=session,
        person=session.person,
        request_path=_here(request),
        **context,
    )
    response = HTMLResponse(html, status_code=status_code, headers=security_headers(settings))
    return with_session_cookie(response, session, settings)


def redirect(request: Request, url: str, session: Session | None = None) -> Response:
    """A 303 to `url` (after a form), keeping the session cookie."""
    response = RedirectResponse(
        url, status_code=303, headers=security_headers(request.app.state.settings)
    )
    if session is not None:
        with_session_cookie(response, session, request.app.state.settings)
    return response


def wants_html(request: Request) -> bool:
    """True for a browser navigation or form post, False for the workspace's own fetches."""
    accept = request.headers.get("accept", "")
    return "text/html" in accept or (request.method == "GET" and "application/json" not in accept)


async def error_page(request: Request, exc: Exception) -> Response:
    """Show a workspace error as a page, or as problem+json to the workspace's scripts."""
    assert isinstance(exc, ServiceError)
    if not wants_html(request):
        return problem_response(
            status=exc.status, title=exc.title, slug=exc.slug, detail=exc.detail, request=request
        )
    if isinstance(exc, SignedOut):
        return redirect(request, "/")
    store = request.app.state.sessions
    session = store.get(request.cookies.get(SESSION_COOKIE)) or store.create()
    return render(
        request,
        "error.html",
        session,
        status_code=exc.status,
        title=gettext(exc.title),
        detail=gettext(str(exc.detail)) if isinstance(exc.detail, str) else exc.detail.render(),
    )
