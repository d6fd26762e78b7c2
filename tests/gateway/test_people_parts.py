"""The tricky parts of signing people in, one by one: PKCE, TOTP steps, tickets, sealing."""

from __future__ import annotations

import secrets
import uuid

import pyotp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.gateway import totp
from services.gateway.grants import VERIFIER, s256
from services.gateway.signin import ticket, ticket_user
from services.gateway.vault import PeopleVault, SealError

KEK = secrets.token_bytes(32)


class TestPkce:
    def test_s256_matches_the_rfc_7636_example(self) -> None:
        verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        assert s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

    @pytest.mark.parametrize("verifier", ["short", "x" * 129, "with space" * 5, "é" * 43])
    def test_verifiers_outside_the_rfc_alphabet_or_length_are_refused(self, verifier: str) -> None:
        assert not VERIFIER.match(verifier)


class TestTotpSteps:
    SECRET = pyotp.random_base32()

    def test_the_current_and_neighbouring_codes_are_accepted_once_each(self) -> None:
        now = 1_800_000_000.0
        code = pyotp.TOTP(self.SECRET).at(now)
        step = totp.matching_step(self.SECRET, code, last_step=None, now=now)
        assert step == int(now // 30)
        assert totp.matching_step(self.SECRET, code, last_step=step, now=now) is None
        previous = pyotp.TOTP(self.SECRET).at(now - 30)
        assert totp.matching_step(self.SECRET, previous, last_step=None, now=now) == step - 1
        # Once a newer code was used, an older one never is (no replay of earlier steps).
        assert totp.matching_step(self.SECRET, previous, last_step=step, now=now) is None

    @pytest.mark.parametrize("offset", [-90, -60, 60, 90])
    def test_codes_further_away_are_refused(self, offset: int) -> None:
        now = 1_800_000_000.0
        code = pyotp.TOTP(self.SECRET).at(now + offset)
        assert totp.matching_step(self.SECRET, code, last_step=None, now=now) is None

    @given(st.text(max_size=12))
    def test_anything_but_six_digits_is_refused(self, text: str) -> None:
        if text.strip().replace(" ", "").isdigit() and len(text.strip().replace(" ", "")) == 6:
            return
        assert totp.matching_step(self.SECRET, text, last_step=None) is None


class TestTickets:
    def test_a_ticket_names_its_account_only_in_the_browser_it_was_made_for(self) -> None:
        vault, user = PeopleVault(KEK), uuid.uuid4()
        made = ticket(vault, user, "cookie-a")
        assert ticket_user(vault, made, "cookie-a") == user
        assert ticket_user(vault, made, "cookie-b") is None
        assert ticket_user(PeopleVault(secrets.token_bytes(32)), made, "cookie-a") is None

    def test_an_edited_or_malformed_ticket_is_refused(self) -> None:
        vault, user = PeopleVault(KEK), uuid.uuid4()
        user_id, expires, mac = ticket(vault, user, "c").split(".")
        for forged in (
            f"{uuid.uuid4()}.{expires}.{mac}",
            f"{user_id}.{int(expires) + 3600}.{mac}",
            f"{user_id}.1.{vault.mac('password-proven', user_id, '1', 'c')}",  # expired
            "not-a-ticket",
            "",
        ):
            assert ticket_user(vault, forged, "c") is None


class TestSealing:
    @given(st.text(min_size=1, max_size=200))
    def test_a_sealed_field_opens_only_for_its_owner_and_field(self, text: str) -> None:
        vault = PeopleVault(KEK)
        sealed = vault.seal(owner="u1", field="email", text=text)
        assert vault.open(owner="u1", field="email", sealed=sealed) == text
        assert len(text.encode()) < 8 or text.encode() not in sealed
        for owner, field in (("u2", "email"), ("u1", "name")):
            with pytest.raises(SealError):
                vault.open(owner=owner, field=field, sealed=sealed)

    def test_e_mails_are_indexed_without_regard_to_case_or_blanks(self) -> None:
        vault = PeopleVault(KEK)
        assert vault.email_index(" Ana@Office.EXAMPLE ") == vault.email_index("ana@office.example")
        assert vault.email_index("ana@office.example") != vault.email_index("ann@office.example")
        assert vault.email_index("ana@office.example") != PeopleVault(
            secrets.token_bytes(32)
        ).email_index("ana@office.example")


class TestRedirectUriSettings:
    def test_outside_development_only_https_or_loopback_redirects_are_accepted(self) -> None:
        from pydantic import ValidationError

        from services.gateway.settings import GatewaySettings

        common = {"environment": "production", "database_url": "sqlite+aiosqlite:///x.db"}
        https = "https://workspace.example/auth/callback,http://127.0.0.1:8005/auth/callback"
        accepted = GatewaySettings(**common, web_redirect_uris=https)
        assert accepted.redirect_uris()[0] == "https://workspace.example/auth/callback"
        assert accepted.secure_cookies
        for refused in ("http://workspace.example/auth/callback", "/relative", "https://x#f"):
            with pytest.raises(ValidationError):
                GatewaySettings(**common, web_redirect_uris=refused)
