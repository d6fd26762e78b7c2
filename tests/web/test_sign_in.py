"""The workspace signs people in at a real gateway (in process): PKCE, rotation, revocation."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from services.gateway.app import create_app as create_gateway
from services.web.app import create_app as create_web
from services.web.sessions import SESSION_COOKIE, Session, SessionStore
from services.web.settings import WebSettings
from shared.demo import HEALTH_PROVIDER_ORG
from tests.gateway.conftest import SettingsFactory, admin_headers
from tests.gateway.people import PASSWORD, cookie_of, create_user, hidden_fields, refresh

WORKSPACE = "http://127.0.0.1:8005"


@dataclass
class Linked:
    """A gateway and a workspace wired to it, each with an HTTP client (a browser's part)."""

    gateway: httpx.AsyncClient
    web: httpx.AsyncClient
    web_app: FastAPI
    email: str
    to_gateway: httpx.ASGITransport

    def session(self) -> Session:
        store: SessionStore = self.web_app.state.sessions
        found = store.get(self.web.cookies.get(SESSION_COOKIE))
        assert found is not None
        return found

    async def authorization_redirect(self) -> httpx.Response:
        """Start at the workspace, sign in on the gateway's page; its redirect back."""
        start = await self.web.get("/auth/sign-in")
        assert start.status_code == 303
        target = urlsplit(start.headers["location"])
        page = await self.gateway.get(f"{target.path}?{target.query}")
        assert page.status_code == 200, page.text
        form = {**hidden_fields(page.text), "email": self.email, "password": PASSWORD}
        answer = await self.gateway.post(
            "/oauth/authorize", data=form, headers={"Cookie": cookie_of(page)}
        )
        assert answer.status_code == 303, answer.text
        return answer

    async def sign_in(self) -> httpx.Response:
        back = urlsplit((await self.authorization_redirect()).headers["location"])
        assert f"{back.scheme}://{back.netloc}{back.path}" == f"{WORKSPACE}/auth/callback"
        return await self.web.get(f"{back.path}?{back.query}")


@pytest.fixture
async def linked(gateway_settings: SettingsFactory, tmp_path: Path) -> AsyncIterator[Linked]:
    gateway_app = create_gateway(await gateway_settings())
    async with LifespanManager(gateway_app) as gateway_manager:
        to_gateway = httpx.ASGITransport(gateway_manager.app)
        # The workspace verifies the tokens it gets with the gateway's published keys.
        jwks = tmp_path / "jwks.json"
        jwks.write_bytes(orjson.dumps(gateway_app.state.keys.public_jwks()))
        settings = WebSettings(
            environment="development",
            gateway_url="http://gateway",
            public_url=WORKSPACE,
            jwks_file=jwks,
            token_issuer=gateway_app.state.settings.token_issuer,
        )
        web_app = create_web(settings, gateway_transport=to_gateway)
        async with (
            LifespanManager(web_app) as web_manager,
            httpx.AsyncClient(transport=to_gateway, base_url="http://gateway") as gateway,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(web_manager.app), base_url=WORKSPACE
            ) as web,
        ):
            admin = await admin_headers(gateway, gateway_app)
            user = await create_user(gateway, admin, roles=["provider"], org=HEALTH_PROVIDER_ORG)
            yield Linked(gateway, web, web_app, user["user"]["email"], to_gateway)


class TestSignIn:
    async def test_a_person_signs_in_with_pkce_into_a_fresh_session(self, linked: Linked) -> None:
        await linked.web.get("/")
        before = linked.web.cookies[SESSION_COOKIE]
        done = await linked.sign_in()
        assert done.status_code == 200
        assert linked.web.cookies[SESSION_COOKIE] != before  # no session fixation
        person = linked.session().person
        assert person is not None
        assert person.org_id == str(HEALTH_PROVIDER_ORG)
        assert "provider" in person.roles
        home = await linked.web.get("/")
        assert home.status_code == 303 and home.headers["location"] == "/inbox"

    async def test_the_authorization_request_carries_an_s256_challenge(
        self, linked: Linked
    ) -> None:
        start = await linked.web.get("/auth/sign-in")
        query = dict(
            part.split("=", 1) for part in urlsplit(start.headers["location"]).query.split("&")
        )
        assert query["code_challenge_method"] == "S256"
        assert query["client_id"] == "refex-web"
        assert len(query["code_challenge"]) == 43
        cookie = start.headers.get_list("set-cookie")
        assert any(
            "refex_sign_in=" in c and "HttpOnly" in c and "SameSite=lax" in c for c in cookie
        )

    async def test_a_callback_with_another_state_signs_no_one_in(self, linked: Linked) -> None:
        back = urlsplit((await linked.authorization_redirect()).headers["location"])
        forged = back.query.replace("state=", "state=x")
        answer = await linked.web.get(f"{back.path}?{forged}")
        assert answer.status_code == 400
        assert (await linked.web.get("/inbox")).headers["location"] == "/"

    async def test_a_token_that_does_not_verify_signs_no_one_in(
        self, linked: Linked, jwks_file: Path
    ) -> None:
        # A workspace trusting other keys than the gateway's: the code exchange works, the
        # token it returns does not verify, and nobody is signed in.
        stranger = create_web(
            WebSettings(environment="development", gateway_url="http://gateway",
                        public_url=WORKSPACE, jwks_file=jwks_file),
            gateway_transport=linked.to_gateway,
        )  # fmt: skip
        async with (
            LifespanManager(stranger) as manager,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(manager.app), base_url=WORKSPACE
            ) as web,
        ):
            other = Linked(linked.gateway, web, stranger, linked.email, linked.to_gateway)
            assert (await other.sign_in()).status_code == 400
            assert (await web.get("/inbox")).headers["location"] == "/"

    async def test_a_callback_replayed_is_refused(self, linked: Linked) -> None:
        back = urlsplit((await linked.authorization_redirect()).headers["location"])
        first = await linked.web.get(f"{back.path}?{back.query}")
        assert first.status_code == 200
        again = await linked.web.get(f"{back.path}?{back.query}")
        assert again.status_code == 400


class TestTokens:
    async def test_an_expiring_access_token_is_refreshed_and_the_old_refresh_token_is_spent(
        self, linked: Linked
    ) -> None:
        await linked.sign_in()
        tokens = linked.session().tokens
        assert tokens is not None
        old_access, old_refresh = tokens.access_token, tokens.refresh_token
        tokens.expires_at = time.monotonic()  # as if five minutes had passed
        await linked.web.get("/keys")  # any page that calls the API
        renewed = linked.session().tokens
        assert renewed is not None
        assert renewed.access_token != old_access
        assert renewed.refresh_token != old_refresh
        assert (await refresh(linked.gateway, old_refresh)).status_code == 400

    async def test_sign_out_revokes_the_refresh_token_and_ends_the_session(
        self, linked: Linked
    ) -> None:
        await linked.sign_in()
        session = linked.session()
        assert session.tokens is not None
        refresh_token = session.tokens.refresh_token
        out = await linked.web.post("/auth/sign-out", data={"csrf": session.csrf_token})
        assert out.status_code == 303
        assert (await refresh(linked.gateway, refresh_token)).status_code == 400
        assert (await linked.web.get("/inbox")).headers["location"] == "/"

    async def test_a_form_without_the_csrf_token_changes_nothing(self, linked: Linked) -> None:
        await linked.sign_in()
        refused = await linked.web.post(
            "/auth/sign-out", data={"csrf": "forged"}, headers={"Accept": "text/html"}
        )
        assert refused.status_code == 403
        assert linked.session().signed_in
        session = linked.session()
        assert session.tokens is not None
        assert (await refresh(linked.gateway, session.tokens.refresh_token)).status_code == 200


class TestPages:
    async def test_a_referral_path_that_is_not_an_id_never_reaches_the_api(
        self, linked: Linked
    ) -> None:
        await linked.sign_in()
        assert (await linked.web.get("/referrals/not-an-id")).status_code == 422
        assert (await linked.web.get("/referrals/..%2Fconsents")).status_code == 404

    async def test_pages_carry_the_security_headers_and_a_strict_http_only_cookie(
        self, linked: Linked
    ) -> None:
        page = await linked.web.get("/", headers={"Accept-Language": "fr"})
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["cache-control"] == "no-store"
        cookie = page.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "Secure" not in cookie  # development only
        assert '<html lang="fr">' in page.text

    async def test_outside_development_the_session_cookie_is_secure(self) -> None:
        app = create_web(WebSettings(environment="test"))
        async with (
            LifespanManager(app) as manager,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(manager.app), base_url=WORKSPACE
            ) as web,
        ):
            page = await web.get("/")
        assert "Secure" in page.headers["set-cookie"]

    async def test_the_language_switch_needs_the_csrf_token_and_is_remembered(
        self, linked: Linked
    ) -> None:
        await linked.web.get("/")
        refused = await linked.web.post(
            "/language", data={"lang": "fr"}, headers={"Accept": "text/html"}
        )
        assert refused.status_code == 403
        csrf = linked.session().csrf_token
        for elsewhere in ("//evil.example", "/\\evil.example", "https://evil.example"):
            moved = await linked.web.post(
                "/language", data={"lang": "fr", "csrf": csrf, "next": elsewhere}
            )
            assert moved.status_code == 303 and moved.headers["location"] == "/"
        page = await linked.web.get("/", headers={"Accept-Language": "en"})
        assert '<html lang="fr">' in page.text


class TestNoteRoutes:
    """The note routes pass on sealed notes only; their refusals are problem+json for scripts."""

    async def test_a_note_without_the_csrf_token_is_refused(self, linked: Linked) -> None:
        await linked.sign_in()
        refused = await linked.web.post(
            f"/referrals/{uuid.uuid4()}/notes",
            json={"sealed": {"ciphertext": "x"}, "key_set_fingerprint": "abcdefgh"},
        )
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/problem+json")

    @pytest.mark.parametrize(
        "body",
        [
            {"text": "in clear"},
            {"text": "in clear", "sealed": {"ciphertext": "x"}, "key_set_fingerprint": "abcdefgh"},
            {"sealed": {"ciphertext": "x"}},
            {"sealed": {}, "key_set_fingerprint": "abcdefgh"},
        ],
    )
    async def test_a_note_that_is_not_sealed_never_reaches_the_api(
        self, linked: Linked, body: dict[str, object]
    ) -> None:
        await linked.sign_in()
        refused = await linked.web.post(
            f"/referrals/{uuid.uuid4()}/notes",
            json=body,
            headers={"X-CSRF-Token": linked.session().csrf_token},
        )
        assert refused.status_code == 422
        assert refused.json()["type"].endswith("note-not-sealed")
        assert "in clear" not in refused.text

    async def test_the_keys_a_script_asks_for_come_back_as_json_even_when_refused(
        self, linked: Linked
    ) -> None:
        await linked.sign_in()
        answer = await linked.web.get(
            f"/referrals/{uuid.uuid4()}/keys", headers={"Accept": "application/json"}
        )
        assert answer.status_code >= 400
        assert "json" in answer.headers["content-type"]
