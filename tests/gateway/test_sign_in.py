"""People sign in at the gateway: the page, the code flow with PKCE, lockout, the second factor."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select, update

from services.gateway.app import create_app
from services.gateway.models import AuthorizationCode, RefreshFamily, RefreshToken, UserAccount
from shared.auth import StaticJwks, TokenVerifier
from shared.clock import utcnow
from shared.demo import ADMIN_ORG, HOST_OFFICE_ORG
from tests.gateway.conftest import SettingsFactory, admin_headers
from tests.gateway.people import (
    PASSWORD,
    REDIRECT,
    WEB,
    Browser,
    code_of,
    create_user,
    enrol_totp,
    exchange,
    refresh,
    tokens_for,
)

Env = tuple[httpx.AsyncClient, FastAPI, dict[str, str]]


async def _env(settings: Any, in_process: Any) -> AsyncIterator[Env]:
    app = create_app(settings)
    async with in_process(app) as http:
        yield http, app, await admin_headers(http, app)


@pytest.fixture
async def env(gateway_settings: SettingsFactory, in_process: Any) -> AsyncIterator[Env]:
    """A gateway (both backends) with an admin client's header at hand."""
    async for value in _env(await gateway_settings(signin_max_failures=3), in_process):
        yield value


async def _account(app: FastAPI, user_id: str) -> UserAccount:
    async with app.state.db.sessionmaker() as session:
        row = await session.get(UserAccount, uuid.UUID(user_id))
        assert row is not None
        return row


class TestTheSignInPage:
    async def test_it_is_a_csrf_protected_form_behind_a_strict_cookie(self, env: Env) -> None:
        http, _, _ = env
        browser = Browser(http)
        page = await browser.open()
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        cookie = page.headers["set-cookie"].lower()
        for attribute in ("httponly", "samesite=strict", "secure", "path=/oauth/authorize"):
            assert attribute in cookie
        assert len(browser.fields["csrf_token"]) == 64
        assert browser.fields["code_challenge"] == browser.params["code_challenge"]
        policy = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy
        assert "form-action 'self' http://127.0.0.1:8005 http://localhost:8005" in policy
        assert page.headers["cache-control"] == "no-store"
        assert 'name="password"' in page.text and 'name="totp_code"' not in page.text

    async def test_it_speaks_french_by_ui_locales_or_accept_language(self, env: Env) -> None:
        http, _, _ = env
        browser = Browser(http)
        french = await browser.open(ui_locales="fr")
        assert '<html lang="fr">' in french.text and "Mot de passe" in french.text
        assert browser.fields["ui_locales"] == "fr"
        negotiated = await http.get(
            "/oauth/authorize", params=browser.params | {"ui_locales": ""},
            headers={"Accept-Language": "fr-SN,fr;q=0.9"},
        )  # fmt: skip
        assert "Mot de passe" in negotiated.text
        english = await Browser(http).open()
        assert '<html lang="en">' in english.text and "Password" in english.text

    @pytest.mark.parametrize(
        "overrides",
        [{"client_id": "someone-else"}, {"redirect_uri": "https://evil.example/cb"},
         {"redirect_uri": REDIRECT + "/more"}],
    )  # fmt: skip
    async def test_an_unknown_client_or_redirect_uri_is_a_page_never_a_redirect(
        self, env: Env, overrides: dict[str, str]
    ) -> None:
        http, _, _ = env
        page = await Browser(http).open(**overrides)
        assert page.status_code == 400
        assert "location" not in page.headers
        assert "set-cookie" not in page.headers

    @pytest.mark.parametrize(
        "overrides",
        [{"code_challenge_method": "plain"}, {"code_challenge": "short"},
         {"response_type": "token"}],
    )  # fmt: skip
    async def test_missing_pkce_goes_back_to_the_workspace_as_invalid_request(
        self, env: Env, overrides: dict[str, str]
    ) -> None:
        http, _, _ = env
        browser = Browser(http)
        answer = await browser.open(**overrides)
        assert answer.status_code == 303
        query = parse_qs(urlsplit(answer.headers["location"]).query)
        assert query["error"] == ["invalid_request"]
        assert query["state"] == [browser.params["state"]]
        assert "code" not in query

    async def test_the_redirected_error_is_described_in_the_pages_language(self, env: Env) -> None:
        http, _, _ = env
        answer = await Browser(http).open(code_challenge_method="plain", ui_locales="fr")
        query = parse_qs(urlsplit(answer.headers["location"]).query)
        assert query["error"] == ["invalid_request"]
        assert query["error_description"] == [
            "PKCE est obligatoire : code_challenge_method doit valoir S256."
        ]


class TestCodeFlow:
    async def test_a_person_gets_tokens_that_carry_them_their_org_and_roles(self, env: Env) -> None:
        http, app, admin = env
        created = await create_user(http, admin, roles=["host_office"])
        body = await tokens_for(http, created["user"]["email"])
        assert body["token_type"] == "Bearer" and body["expires_in"] == 300
        assert body["scope"] == "host_office" and body["refresh_token"]
        jwks = (await http.get("/.well-known/jwks.json")).json()
        claims = jwt.decode(body["access_token"], KeySet.import_key_set(jwks)).claims
        user_id = created["user"]["user_id"]
        assert claims["sub"] == f"user:{user_id}" and claims["person"] == user_id
        assert claims["org"] == claims["org_id"] == str(HOST_OFFICE_ORG)
        assert claims["roles"] == ["host_office"]
        settings = app.state.settings
        verifier = TokenVerifier(
            StaticJwks(jwks), issuer=settings.token_issuer, audience=settings.token_audience
        )
        principal = await verifier.verify(body["access_token"])
        assert principal.person_id == uuid.UUID(user_id)
        assert principal.org_id == str(HOST_OFFICE_ORG)

    async def test_the_e_mail_is_matched_without_regard_to_case(self, env: Env) -> None:
        http, _, admin = env
        await create_user(http, admin, roles=["provider"], email="Mixed.Case@Clinic.example")
        body = await tokens_for(http, "  mixed.case@CLINIC.example ")
        assert body["scope"] == "provider"

    async def test_a_wrong_verifier_is_refused_and_burns_the_code(self, env: Env) -> None:
        http, _, admin = env
        created = await create_user(http, admin, roles=["host_office"])
        browser = Browser(http)
        code = code_of(await browser.sign_in(created["user"]["email"]), browser.params["state"])
        wrong = await exchange(http, code, "x" * 50)
        assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
        retried = await exchange(http, code, browser.verifier)
        assert retried.status_code == 400 and retried.json()["error"] == "invalid_grant"

    async def test_a_reused_code_is_refused_and_ends_the_sign_in_it_started(self, env: Env) -> None:
        http, _, admin = env
        created = await create_user(http, admin, roles=["host_office"])
        browser = Browser(http)
        code = code_of(await browser.sign_in(created["user"]["email"]), browser.params["state"])
        first = await exchange(http, code, browser.verifier)
        assert first.status_code == 200
        again = await exchange(http, code, browser.verifier)
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
        assert (await refresh(http, first.json()["refresh_token"])).status_code == 400

    async def test_an_expired_code_is_refused(self, env: Env) -> None:
        http, app, admin = env
        created = await create_user(http, admin, roles=["host_office"])
        browser = Browser(http)
        code = code_of(await browser.sign_in(created["user"]["email"]), browser.params["state"])
        async with app.state.db.sessionmaker.begin() as session:
            await session.execute(
                update(AuthorizationCode).values(expires_at=utcnow() - timedelta(seconds=1))
            )
        expired = await exchange(http, code, browser.verifier)
        assert expired.status_code == 400 and expired.json()["error"] == "invalid_grant"
        assert "expired" in expired.json()["error_description"]

    async def test_a_code_is_bound_to_its_redirect_uri(self, env: Env) -> None:
        http, _, admin = env
        created = await create_user(http, admin, roles=["host_office"])
        browser = Browser(http)
        code = code_of(await browser.sign_in(created["user"]["email"]), browser.params["state"])
        other = "http://localhost:8005/auth/callback"
        answer = await exchange(http, code, browser.verifier, redirect_uri=other)
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"

    @pytest.mark.parametrize("client_id", ["someone-else", "refex-web-2"])
    async def test_an_unknown_client_gets_invalid_client(self, env: Env, client_id: str) -> None:
        http, _, admin = env
        created = await create_user(http, admin, roles=["host_office"])
        browser = Browser(http)
        code = code_of(await browser.sign_in(created["user"]["email"]), browser.params["state"])
        answer = await exchange(http, code, browser.verifier, client_id=client_id)
        assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"
        # The refused attempt did not consume the code: it is still the workspace's to redeem.
        assert (await exchange(http, code, browser.verifier)).status_code == 200

    async def test_an_unknown_code_is_invalid_grant(self, env: Env) -> None:
        http, _, _ = env
        answer = await exchange(http, "made-up", "v" * 43)
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


class TestRefusedSignIns:
    async def test_wrong_password_and_unknown_e_mail_look_the_same(self, env: Env) -> None:
        http, app, admin = env
        created = await create_user(http, admin, roles=["host_office"])
        wrong = await Browser(http).sign_in(created["user"]["email"], "not the password!")
        unknown = await Browser(http).sign_in("nobody@nowhere.example", "not the password!")
        assert wrong.status_code == unknown.status_code == 200
        assert "location" not in wrong.headers and "location" not in unknown.headers

        def message(page: str) -> str:
            return page.split('role="alert">', 1)[1].split("</p>", 1)[0]

        assert message(wrong.text) == message(unknown.text)
        assert (await _account(app, created["user"]["user_id"])).failed_attempts == 1

    async def test_repeated_failures_lock_the_account_even_for_the_right_password(
        self, env: Env
    ) -> None:
        http, _, admin = env
        created = await create_user(http, admin, roles=["host_office"])
        email, user_id = created["user"]["email"], created["user"]["user_id"]
        for _ in range(3):
            await Browser(http).sign_in(email, "not the password!")
        locked = await Browser(http).sign_in(email)
        assert locked.status_code == 200 and "location" not in locked.headers
        shown = (await http.get(f"/admin/users/{user_id}", headers=admin)).json()
        assert shown["locked_until"] is not None
        await http.post(f"/admin/users/{user_id}/enable", headers=admin)
        assert (await Browser(http).sign_in(email)).status_code == 303
        actions = [
            e["action"]
            for e in (await http.get(f"/admin/users/{user_id}/events", headers=admin)).json()[
                "items"
            ]
        ]
        assert actions == ["user.created", "user.locked", "user.enabled", "user.signed-in"]

    async def test_a_disabled_account_cannot_sign_in(self, env: Env) -> None:
        http, _, admin = env
        created = await create_user(http, admin, roles=["host_office"])
        await http.post(f"/admin/users/{created['user']['user_id']}/disable", headers=admin)
        refused = await Browser(http).sign_in(created["user"]["email"])
        assert refused.status_code == 200 and "location" not in refused.headers

    async def test_a_post_without_the_pages_cookie_or_token_is_refused_as_csrf(
        self, env: Env
    ) -> None:
        http, app, admin = env
        created = await create_user(http, admin, roles=["host_office"])
        browser = Browser(http)
        await browser.open()
        form = {**browser.fields, "email": created["user"]["email"], "password": "wrong!"}
        no_cookie = await http.post("/oauth/authorize", data=form)
        forged = await http.post(
            "/oauth/authorize",
            data={**form, "csrf_token": "0" * 64},
            headers={"Cookie": browser.cookie},
        )
        other_browser = Browser(http)
        await other_browser.open()
        foreign_cookie = await http.post(
            "/oauth/authorize", data=form, headers={"Cookie": other_browser.cookie}
        )
        for answer in (no_cookie, forged, foreign_cookie):
            assert answer.status_code == 403 and "location" not in answer.headers
        assert (await _account(app, created["user"]["user_id"])).failed_attempts == 0

    async def test_attempts_are_limited_per_account(
        self, gateway_settings: SettingsFactory, in_process: Any
    ) -> None:
        settings = await gateway_settings(signin_account_rate_limit_burst=2)
        async for http, _, admin in _env(settings, in_process):
            created = await create_user(http, admin, roles=["host_office"])
            for _ in range(2):
                await Browser(http).sign_in(created["user"]["email"], "not the password!")
            limited = await Browser(http).sign_in(created["user"]["email"])
            assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
            other = await create_user(http, admin, roles=["host_office"])
            assert (await Browser(http).sign_in(other["user"]["email"])).status_code == 303

    async def test_attempts_are_limited_per_address(
        self, gateway_settings: SettingsFactory, in_process: Any
    ) -> None:
        settings = await gateway_settings(signin_address_rate_limit_burst=2)
        async for http, _, admin in _env(settings, in_process):
            created = await create_user(http, admin, roles=["host_office"])
            for _ in range(2):
                await Browser(http).sign_in("someone@else.example", "not the password!")
            limited = await Browser(http).sign_in(created["user"]["email"])
            assert limited.status_code == 429 and "location" not in limited.headers


class TestSecondFactor:
    async def test_an_enrolled_account_needs_its_current_code(self, env: Env) -> None:
        http, _, admin = env
        created = await create_user(http, admin, roles=["provider"])
        authenticator = await enrol_totp(http, admin, created["user"]["user_id"])
        browser = Browser(http)
        step = await browser.sign_in(created["user"]["email"])
        assert step.status_code == 200 and 'name="totp_code"' in step.text
        assert "mfa_ticket" in browser.fields and 'name="password"' not in step.text
        wrong_code = str((int(authenticator.now()) + 1) % 1_000_000).zfill(6)
        wrong = await browser.submit(totp_code=wrong_code)
        assert wrong.status_code == 200 and 'role="alert"' in wrong.text
        right = await browser.submit(totp_code=authenticator.now())
        code = code_of(right, browser.params["state"])
        assert (await exchange(http, code, browser.verifier)).status_code == 200

    async def test_a_code_cannot_be_used_twice(self, env: Env) -> None:
        http, _, admin = env
        created = await create_user(http, admin, roles=["provider"])
        authenticator = await enrol_totp(http, admin, created["user"]["user_id"])
        first = Browser(http)
        await first.sign_in(created["user"]["email"])
        code = authenticator.now()
        assert (await first.submit(totp_code=code)).status_code == 303
        second = Browser(http)
        await second.sign_in(created["user"]["email"])
        replay = await second.submit(totp_code=code)
        assert replay.status_code == 200 and "location" not in replay.headers

    async def test_a_forged_ticket_does_not_skip_the_password(self, env: Env) -> None:
        http, _, admin = env
        created = await create_user(http, admin, roles=["provider"])
        authenticator = await enrol_totp(http, admin, created["user"]["user_id"])
        browser = Browser(http)
        await browser.open()
        forged = f"{created['user']['user_id']}.9999999999.{'0' * 64}"
        answer = await browser.submit(mfa_ticket=forged, totp_code=authenticator.now())
        assert answer.status_code == 200 and "location" not in answer.headers
        assert 'name="password"' in answer.text

    async def test_outside_development_an_admin_needs_a_second_factor(self, env: Env) -> None:
        http, _, admin = env
        created = await create_user(http, admin, roles=["admin"], org=ADMIN_ORG)
        refused = await Browser(http).sign_in(created["user"]["email"])
        assert refused.status_code == 200 and "location" not in refused.headers
        assert "second factor" in refused.text
        authenticator = await enrol_totp(http, admin, created["user"]["user_id"])
        browser = Browser(http)
        await browser.sign_in(created["user"]["email"])
        assert (await browser.submit(totp_code=authenticator.now())).status_code == 303

    async def test_in_development_an_admin_signs_in_with_the_password_alone(
        self, gateway_settings: SettingsFactory, in_process: Any
    ) -> None:
        settings = await gateway_settings(environment="development")
        async for http, _, admin in _env(settings, in_process):
            created = await create_user(http, admin, roles=["admin"], org=ADMIN_ORG)
            assert (await Browser(http).sign_in(created["user"]["email"])).status_code == 303


class TestRefreshAndRevocation:
    async def test_refresh_rotates_and_a_replayed_token_ends_the_sign_in(self, env: Env) -> None:
        http, _, admin = env
        created = await create_user(http, admin, roles=["host_office"])
        first = await tokens_for(http, created["user"]["email"])
        rotated = await refresh(http, first["refresh_token"])
        assert rotated.status_code == 200
        second = rotated.json()
        assert second["refresh_token"] != first["refresh_token"]
        assert second["access_token"] != first["access_token"]
        replayed = await refresh(http, first["refresh_token"])
        assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"
        # The thief and the owner cannot tell each other apart: the whole sign-in ends.
        assert (await refresh(http, second["refresh_token"])).status_code == 400
        events = (
            await http.get(f"/admin/users/{created['user']['user_id']}/events", headers=admin)
        ).json()["items"]
        assert events[-1]["action"] == "user.refresh-reused"

    async def test_a_refresh_token_is_the_workspaces_only(self, env: Env) -> None:
        http, _, admin = env
        created = await create_user(http, admin, roles=["host_office"])
        tokens = await tokens_for(http, created["user"]["email"])
        answer = await http.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                  "client_id": "other"},
        )  # fmt: skip
        assert answer.status_code == 401
        assert (await refresh(http, tokens["refresh_token"])).status_code == 200

    async def test_revocation_ends_the_sign_in(self, env: Env) -> None:
        http, _, admin = env
        created = await create_user(http, admin, roles=["host_office"])
        tokens = await tokens_for(http, created["user"]["email"])
        revoked = await http.post(
            "/oauth/revoke", data={"token": tokens["refresh_token"], "client_id": WEB}
        )
        assert revoked.status_code == 200
        assert (await refresh(http, tokens["refresh_token"])).status_code == 400

    async def test_revoking_an_unknown_token_is_200_and_a_missing_one_400(self, env: Env) -> None:
        http, _, _ = env
        unknown = await http.post("/oauth/revoke", data={"token": "nope", "client_id": WEB})
        assert unknown.status_code == 200
        missing = await http.post("/oauth/revoke", data={"client_id": WEB})
        assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
        stranger = await http.post("/oauth/revoke", data={"token": "x", "client_id": "other"})
        assert stranger.status_code == 401

    async def test_sign_out_everywhere_ends_every_sign_in_of_the_person(self, env: Env) -> None:
        http, _, admin = env
        created = await create_user(http, admin, roles=["host_office"])
        other = await create_user(http, admin, roles=["host_office"])
        laptop = await tokens_for(http, created["user"]["email"])
        phone = await tokens_for(http, created["user"]["email"])
        unrelated = await tokens_for(http, other["user"]["email"])
        answer = await http.post(
            f"/admin/users/{created['user']['user_id']}/sign-out", headers=admin
        )
        assert answer.status_code == 200 and answer.json()["revoked_sessions"] == 2
        assert (await refresh(http, laptop["refresh_token"])).status_code == 400
        assert (await refresh(http, phone["refresh_token"])).status_code == 400
        assert (await refresh(http, unrelated["refresh_token"])).status_code == 200

    async def test_a_sign_in_ends_after_the_session_lifetime_and_is_then_forgotten(
        self, env: Env
    ) -> None:
        http, app, admin = env
        created = await create_user(http, admin, roles=["host_office"])
        tokens = await tokens_for(http, created["user"]["email"])
        async with app.state.db.sessionmaker.begin() as session:
            await session.execute(
                update(RefreshFamily).values(expires_at=utcnow() - timedelta(seconds=1))
            )
        ended = await refresh(http, tokens["refresh_token"])
        assert ended.status_code == 400 and "ended" in ended.json()["error_description"]
        await tokens_for(http, created["user"]["email"])
        async with app.state.db.sessionmaker() as session:
            families = (await session.execute(select(RefreshFamily))).scalars().all()
            kept = (await session.execute(select(RefreshToken))).scalars().all()
        assert len(families) == 1 and len(kept) == 1

    async def test_a_disabled_person_cannot_refresh(self, env: Env) -> None:
        http, _, admin = env
        created = await create_user(http, admin, roles=["host_office"])
        tokens = await tokens_for(http, created["user"]["email"])
        await http.post(f"/admin/users/{created['user']['user_id']}/disable", headers=admin)
        assert (await refresh(http, tokens["refresh_token"])).status_code == 400

    async def test_a_new_password_ends_the_old_sign_ins(self, env: Env) -> None:
        http, _, admin = env
        created = await create_user(http, admin, roles=["host_office"])
        tokens = await tokens_for(http, created["user"]["email"])
        changed = await http.post(
            f"/admin/users/{created['user']['user_id']}/password",
            json={"password": "another long password"},
            headers=admin,
        )
        assert changed.status_code == 200
        assert (await refresh(http, tokens["refresh_token"])).status_code == 400
        assert (await Browser(http).sign_in(created["user"]["email"])).status_code == 200
        await tokens_for(http, created["user"]["email"], "another long password")


class TestStoredAccounts:
    async def test_no_e_mail_or_name_is_stored_in_clear(self, env: Env) -> None:
        http, app, admin = env
        created = await create_user(
            http, admin, roles=["host_office"], email="visible.person@office.example"
        )
        async with app.state.db.sessionmaker() as session:
            row = (await session.execute(select(UserAccount))).scalars().one()
            stored = repr([getattr(row, c.key) for c in UserAccount.__table__.columns])
        assert "visible.person" not in stored.lower() and "Test Person" not in stored
        assert PASSWORD not in stored and row.password_hash.startswith("$argon2id$")
        assert created["user"]["email"] == "visible.person@office.example"
