"""Server-side sessions: the cookie carries only a random id; tokens never reach the browser."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field

SESSION_COOKIE = "refex_session"
# Lax, so the gateway's redirect back (a cross-site navigation in some deployments) carries it;
# it names only the pending sign-in and is deleted by the callback.
LOGIN_COOKIE = "refex_sign_in"
LOGIN_TTL_S = 600


@dataclass
class Tokens:
    """What the gateway issued for the signed-in person."""

    access_token: str
    refresh_token: str
    expires_at: float


@dataclass(frozen=True)
class Person:
    """Who is signed in, as the access token says."""

    person_id: str
    org_id: str
    roles: tuple[str, ...]


@dataclass
class PendingSignIn:
    """An authorization request sent to the gateway and not answered yet."""

    state: str
    code_verifier: str
    created_at: float = field(default_factory=time.monotonic)


@dataclass
class Session:
    """One browser's session."""

    session_id: str
    csrf_token: str
    created_at: float
    last_seen_at: float
    language: str | None = None
    person: Person | None = None
    tokens: Tokens | None = None
    refreshing: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def signed_in(self) -> bool:
        """True once the sign-in completed and until sign-out."""
        return self.person is not None and self.tokens is not None


def new_secret() -> str:
    """A random, URL-safe value with 256 bits of entropy."""
    return secrets.token_urlsafe(32)


class SessionStore:
    """Sessions and pending sign-ins in this process's memory, each with an expiry."""

    def __init__(self, *, ttl_s: float, idle_s: float, capacity: int) -> None:
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._pending: OrderedDict[str, PendingSignIn] = OrderedDict()
        self._ttl_s, self._idle_s, self._capacity = ttl_s, idle_s, capacity

    def create(self, *, language: str | None = None) -> Session:
        """Start a new (signed-out) session."""
        now = time.monotonic()
        session = Session(new_secret(), new_secret(), now, now, language=language)
        self._sessions[session.session_id] = session
        while len(self._sessions) > self._capacity:
            self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id, or None (expired ones are dropped)."""
        session = self._sessions.get(session_id or "")
        if session is None:
            return None
        now = time.monotonic()
        if now - session.created_at > self._ttl_s or now - session.last_seen_at > self._idle_s:
            del self._sessions[session.session_id]
            return None
        session.last_seen_at = now
        self._sessions.move_to_end(session.session_id)
        return session

    def rotate(self, session: Session) -> Session:
        """Give a session a new id and CSRF token (at sign-in, against session fixation)."""
        self._sessions.pop(session.session_id, None)
        session.session_id, session.csrf_token = new_secret(), new_secret()
        self._sessions[session.session_id] = session
        return session

    def delete(self, session: Session) -> None:
        """Forget a session (sign-out)."""
        self._sessions.pop(session.session_id, None)

    def begin_sign_in(self) -> tuple[str, PendingSignIn]:
        """Record a new pending sign-in; return its id (for the login cookie) and itself."""
        pending = PendingSignIn(state=new_secret(), code_verifier=new_secret())
        login_id = new_secret()
        self._pending[login_id] = pending
        while len(self._pending) > self._capacity:
            self._pending.popitem(last=False)
        return login_id, pending

    def finish_sign_in(self, login_id: str | None) -> PendingSignIn | None:
        """Take (once) the pending sign-in with this id, unless it expired."""
        pending = self._pending.pop(login_id or "", None)
        if pending is None or time.monotonic() - pending.created_at > LOGIN_TTL_S:
            return None
        return pending

    def __len__(self) -> int:
        return len(self._sessions)
