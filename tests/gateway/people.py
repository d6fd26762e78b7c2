"""Helpers of the sign-in tests: accounts made through the admin API, a browser's sign-in, PKCE."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp

from shared.demo import HOST_OFFICE_ORG

WEB = "refex-web"
REDIRECT = "http://127.0.0.1:8005/auth/callback"
PASSWORD = "a long enough test password"
HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


def pkce_pair() -> tuple[str, str]:
    """A fresh PKCE verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_params(challenge: str, **overrides: str) -> dict[str, str]:
    """The workspace's authorization request."""
    params = {
        "response_type": "code",
        "client_id": WEB,
        "redirect_uri": REDIRECT,
        "state": "st-" + secrets.token_hex(4),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return params


def hidden_fields(page: str) -> dict[str, str]:
    """The hidden inputs of a sign-in page."""
    return {name: html.unescape(value) for name, value in HIDDEN.findall(page)}


def cookie_of(response: httpx.Response) -> str:
    """The pre-authentication cookie a page set, as a Cookie header value."""
    header = response.headers["set-cookie"]
    return header.split(";", 1)[0]


@dataclass
class Browser:
    """One browser signing in: the page's cookie and form, kept between steps."""

    http: httpx.AsyncClient
    verifier: str = ""
    params: dict[str, str] = field(default_factory=dict)
    cookie: str = ""
    fields: dict[str, str] = field(default_factory=dict)

    async def open(self, **overrides: str) -> httpx.Response:
        """Load the sign-in page as the workspace sends people to it."""
        self.verifier, challenge = pkce_pair()
        self.params = authorize_params(challenge, **overrides)
        page = await self.http.get("/oauth/authorize", params=self.params)
        if page.status_code == 200:
            self.cookie = cookie_of(page)
            self.fields = hidden_fields(page.text)
        return page

    async def submit(self, **form: str) -> httpx.Response:
        """Post the form with the page's hidden fields and cookie."""
        response = await self.http.post(
            "/oauth/authorize", data={**self.fields, **form}, headers={"Cookie": self.cookie}
        )
        if response.status_code == 200:
            self.fields = hidden_fields(response.text)
        return response

    async def sign_in(self, email: str, password: str = PASSWORD) -> httpx.Response:
        """Open the page and post e-mail and password."""
        await self.open()
        return await self.submit(email=email, password=password)


def code_of(response: httpx.Response, state: str) -> str:
    """The code in a redirect to the workspace, checking the state came back."""
    assert response.status_code == 303, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == [state]
    return query["code"][0]


async def exchange(
    http: httpx.AsyncClient, code: str, verifier: str, **overrides: str
) -> httpx.Response:
    """The workspace's code exchange at the token endpoint."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": WEB,
        "code_verifier": verifier,
    }
    form.update(overrides)
    return await http.post("/oauth/token", data=form)


async def refresh(http: httpx.AsyncClient, token: str) -> httpx.Response:
    """Refresh at the token endpoint as the workspace does."""
    return await http.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": token, "client_id": WEB},
    )


async def tokens_for(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> Any:
    """Sign in and exchange the code: the token response body."""
    browser = Browser(http)
    response = await browser.sign_in(email, password)
    code = code_of(response, browser.params["state"])
    answer = await exchange(http, code, browser.verifier)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def create_user(
    http: httpx.AsyncClient,
    admin: dict[str, str],
    *,
    roles: list[str],
    org: uuid.UUID = HOST_OFFICE_ORG,
    email: str | None = None,
    password: str | None = PASSWORD,
) -> dict[str, Any]:
    """Create an account through the admin API; return the answer (user and password)."""
    body: dict[str, Any] = {
        "org_id": str(org),
        "roles": roles,
        "email": email or f"person-{secrets.token_hex(4)}@office.example",
        "display_name": "Test Person",
    }
    if password is not None:
        body["password"] = password
    response = await http.post("/admin/users", json=body, headers=admin)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def enrol_totp(http: httpx.AsyncClient, admin: dict[str, str], user_id: str) -> pyotp.TOTP:
    """Enrol a second factor through the admin API; return the authenticator."""
    response = await http.post(f"/admin/users/{user_id}/totp", headers=admin)
    assert response.status_code == 200, response.text
    secret = parse_qs(urlsplit(response.json()["otpauth_uri"]).query)["secret"][0]
    return pyotp.TOTP(secret)
