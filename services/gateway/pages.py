"""The sign-in page: server-rendered HTML in the reader's language, with strict headers."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from shared.i18n import N_, SUPPORTED, current_language, gettext

TEMPLATES = Path(__file__).with_name("templates")
LANGUAGE_NAMES = {"en": "English", "fr": "Français"}
TEXTS = {
    "title": N_("Sign in to Referral Exchange"),
    "heading": N_("Sign in"),
    "email_label": N_("E-mail address"),
    "password_label": N_("Password"),
    "code_label": N_("Code from your authenticator app"),
    "code_hint": N_("Six digits; a new code appears every 30 seconds."),
    "submit": N_("Sign in"),
    "languages": N_("Language"),
}
REFUSED = N_(
    "Sign-in failed: the e-mail address or password is not right, or the account cannot sign "
    "in now. After repeated failures an account is locked for a while; ask your administrator "
    "if it keeps failing."
)
CODE_WRONG = N_("The code is not right or was already used; enter the current code.")
ADMIN_NEEDS_TOTP = N_(
    "Administrators must sign in with a second factor, and none is set up for this account. "
    "Ask another administrator to enrol one for you."
)
TICKET_EXPIRED = N_("The sign-in took too long; enter your e-mail address and password again.")
CSRF_REFUSED = N_(
    "This sign-in form has expired or was not sent from this page. Go back to the workspace "
    "and choose Sign in again."
)
TOO_MANY = N_("Too many sign-in attempts. Wait a few minutes, then try again.")


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True)
    )


def page_language(ui_locales: str | None) -> str:
    """The language asked for with `ui_locales` (OpenID Connect), else the negotiated one."""
    for tag in (ui_locales or "").split():
        primary = tag.replace("_", "-").split("-")[0].lower()
        if primary in SUPPORTED:
            return primary
    return current_language()


@dataclass
class Page:
    """What one rendering of the sign-in page shows."""

    lang: str
    message: str | None = None
    fields: dict[str, str] | None = None
    csrf_token: str = ""
    ticket: str | None = None
    email: str = ""
    form_actions: list[str] = field(default_factory=list)


def _languages(page: Page) -> list[tuple[str, str, str]]:
    query = dict(page.fields or {})
    return [
        (code, LANGUAGE_NAMES[code], "/oauth/authorize?" + urlencode({**query, "ui_locales": code}))
        for code in SUPPORTED
    ]


def _origins(uris: list[str]) -> str:
    return " ".join(sorted({f"{urlsplit(uri).scheme}://{urlsplit(uri).netloc}" for uri in uris}))


def render(page: Page, *, status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    """Render the page with headers that keep it out of caches, frames and other origins."""
    nonce = secrets.token_urlsafe(16)
    texts = {name: gettext(msgid, page.lang) for name, msgid in TEXTS.items()}
    html = (
        _environment()
        .get_template("signin.html")
        .render(
            lang=page.lang,
            t=texts,
            nonce=nonce,
            message=page.message,
            fields=page.fields,
            csrf_token=page.csrf_token,
            ticket=page.ticket,
            email=page.email,
            languages=_languages(page),
        )
    )
    # form-action must allow the redirect after the POST too: browsers check redirects of a
    # form submission against it.
    policy = (
        f"default-src 'none'; style-src 'nonce-{nonce}'; base-uri 'none'; "
        f"frame-ancestors 'none'; form-action 'self' {_origins(page.form_actions)}".rstrip()
    )
    return HTMLResponse(
        html,
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": policy,
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "Content-Language": page.lang,
            **(headers or {}),
        },
    )
