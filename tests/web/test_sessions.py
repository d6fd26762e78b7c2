"""Sessions, PKCE and the key the browser registers: the parts that must not be got wrong."""

from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from services.web import oauth, sessions
from services.web.schemas import InboxFilter, PublicKeyIn
from services.web.sessions import SessionStore
from shared.crypto import generate_encryption_key, public_part


def store(**overrides: float) -> SessionStore:
    values = {"ttl_s": 3600.0, "idle_s": 600.0, "capacity": 3, **overrides}
    return SessionStore(
        ttl_s=values["ttl_s"], idle_s=values["idle_s"], capacity=int(values["capacity"])
    )


class TestSessionStore:
    def test_a_session_is_found_by_its_id_only(self) -> None:
        sessions_ = store()
        session = sessions_.create()
        assert sessions_.get(session.session_id) is session
        assert sessions_.get("another") is None
        assert sessions_.get(None) is None

    def test_an_idle_or_old_session_is_gone(self, monkeypatch: pytest.MonkeyPatch) -> None:
        sessions_ = store(idle_s=60.0, ttl_s=120.0)
        idle, old = sessions_.create(), sessions_.create()
        now = time.monotonic()
        monkeypatch.setattr(sessions.time, "monotonic", lambda: now + 61)
        assert sessions_.get(idle.session_id) is None
        old.last_seen_at = now + 100
        monkeypatch.setattr(sessions.time, "monotonic", lambda: now + 121)
        assert sessions_.get(old.session_id) is None

    def test_the_oldest_sessions_go_beyond_the_capacity(self) -> None:
        sessions_ = store(capacity=3)
        first, *rest = [sessions_.create() for _ in range(4)]
        assert sessions_.get(first.session_id) is None
        assert all(sessions_.get(s.session_id) is s for s in rest)
        assert len(sessions_) == 3

    def test_rotation_changes_the_id_and_the_csrf_token(self) -> None:
        sessions_ = store()
        session = sessions_.create()
        old_id, old_csrf = session.session_id, session.csrf_token
        sessions_.rotate(session)
        assert sessions_.get(old_id) is None
        assert sessions_.get(session.session_id) is session
        assert session.csrf_token != old_csrf

    def test_a_pending_sign_in_is_taken_once(self) -> None:
        sessions_ = store()
        login_id, pending = sessions_.begin_sign_in()
        assert sessions_.finish_sign_in(login_id) is pending
        assert sessions_.finish_sign_in(login_id) is None

    def test_a_pending_sign_in_expires(self, monkeypatch: pytest.MonkeyPatch) -> None:
        sessions_ = store()
        login_id, _pending = sessions_.begin_sign_in()
        later = time.monotonic() + sessions.LOGIN_TTL_S + 1
        monkeypatch.setattr(sessions.time, "monotonic", lambda: later)
        assert sessions_.finish_sign_in(login_id) is None


class TestPkce:
    def test_the_challenge_is_rfc_7636s_example(self) -> None:
        # RFC 7636 appendix B
        verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        assert oauth.code_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


class TestRegisteredKey:
    def test_a_public_jwk_from_refex_keys_generate_is_accepted(self) -> None:
        public = public_part(generate_encryption_key("clinic-1"))
        accepted = PublicKeyIn.model_validate({**public, "kid": "clinic-key-1"})
        assert accepted.crv == "P-256"

    def test_a_private_member_is_refused(self) -> None:
        private = generate_encryption_key("clinic-1")
        with pytest.raises(ValidationError):
            PublicKeyIn.model_validate({**private, "kid": "clinic-key-1"})


class TestInboxFilter:
    def test_filters_become_list_parameters_of_the_received_box(self) -> None:
        filters = InboxFilter.model_validate(
            {"status": "requested", "overdue": "true", "programme": "eu-2026", "category": "health"}
        )
        assert filters.api_params() == {
            "box": "received",
            "status": "requested",
            "overdue": "true",
            "programme": "eu-2026",
            "category": "health",
        }

    @pytest.mark.parametrize(
        "query", [{"status": "nonsense"}, {"programme": "../x"}, {"category": "x"}]
    )
    def test_a_bad_filter_is_refused(self, query: dict[str, str]) -> None:
        with pytest.raises(ValidationError):
            InboxFilter.model_validate(query)
