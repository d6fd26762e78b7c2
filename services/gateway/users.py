"""Rules of people's accounts: roles, unique e-mails, passwords, second factors, sign-out, audit."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway import repository, totp
from services.gateway.errors import RoleNotForPeople, UserExists, UserNotFound
from services.gateway.hashing import hash_password
from services.gateway.models import UserAccount, UserEvent
from services.gateway.schemas import UserCreate
from services.gateway.vault import PeopleVault
from shared.auth import Principal
from shared.clock import utcnow
from shared.errors import Forbidden
from shared.i18n import N_
from shared.ids import new_id
from shared.vocabulary import Role

GENERATED_PASSWORD_BYTES = 15  # 20 URL-safe characters


@dataclass(frozen=True, slots=True)
class Actor:
    """Who changes an account: an admin's token, a person, or refex itself (seed, CLI)."""

    client_id: str
    org_id: str
    person_id: uuid.UUID | None = None
    request_id: str | None = None

    @classmethod
    def of(cls, principal: Principal, request_id: str | None) -> Actor:
        """The actor behind a verified token."""
        return cls(principal.client_id, principal.org_id, principal.person_id, request_id)


SYSTEM = Actor("refex", "refex")


def checked_roles(roles: list[Role]) -> list[str]:
    """Return the roles once each, refusing the services' own role."""
    unique = [Role(role).value for role in dict.fromkeys(roles)]
    if Role.INTERNAL_CALLER.value in unique:
        raise RoleNotForPeople()
    return unique


async def record(
    *, session: AsyncSession, user_id: uuid.UUID, action: str, actor: Actor = SYSTEM
) -> None:
    """Append an account event (never the e-mail or the name)."""
    event = UserEvent(
        id=new_id(),
        user_id=user_id,
        action=action,
        actor_client_id=actor.client_id,
        actor_org_id=actor.org_id,
        actor_person_id=actor.person_id,
        request_id=actor.request_id,
        at=utcnow(),
    )
    await repository.add_user_event(session=session, event=event)


async def _hashed(password: str) -> str:
    return await anyio.to_thread.run_sync(hash_password, password)


async def create_user(
    *, session: AsyncSession, vault: PeopleVault, user_in: UserCreate, actor: Actor = SYSTEM
) -> tuple[UserAccount, str | None]:
    """Create an account; return it with its password when the gateway generated one."""
    roles = checked_roles(user_in.roles)
    generated = None if user_in.password else secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
    password = user_in.password or generated
    assert password is not None
    now = utcnow()
    user_id = new_id()
    owner = str(user_id)
    user = UserAccount(
        user_id=user_id,
        org_id=user_in.org_id,
        roles=roles,
        email_index=vault.email_index(user_in.email),
        email_sealed=vault.seal(owner=owner, field="email", text=user_in.email),
        display_name_sealed=vault.seal(owner=owner, field="name", text=user_in.display_name),
        password_hash=await _hashed(password),
        failed_attempts=0,
        enabled=True,
        created_at=now,
        updated_at=now,
        password_changed_at=now,
    )
    if not await repository.add_user(session=session, user=user):
        raise UserExists()
    await record(session=session, user_id=user_id, action="user.created", actor=actor)
    return user, generated


async def get_user(*, session: AsyncSession, user_id: uuid.UUID) -> UserAccount:
    """Return the account or raise 404."""
    user = await repository.get_user(session=session, user_id=user_id)
    if user is None:
        raise UserNotFound()
    return user


async def list_users(
    *, session: AsyncSession, org_id: uuid.UUID | None, after: uuid.UUID | None, limit: int
) -> tuple[list[UserAccount], uuid.UUID | None]:
    """Return one page of accounts and the id to continue after."""
    rows = await repository.list_users(session=session, org_id=org_id, after=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1].user_id if more and rows else None


def check_may_sign_out(principal: Principal, user_id: uuid.UUID) -> None:
    """Admins sign anyone out; a person signed in may sign themselves out everywhere."""
    if not principal.has_any_role(Role.ADMIN) and principal.person_id != user_id:
        raise Forbidden(
            N_("Only an admin, or the person signed in to this account, may sign it out.")
        )


async def signed_in(*, session: AsyncSession, principal: Principal) -> UserAccount:
    """Return the account of the person a token was issued to, while it may sign in."""
    if principal.person_id is None:
        raise Forbidden(
            N_("This token was issued to an API client, not to a person; sign in as a person.")
        )
    user = await get_user(session=session, user_id=principal.person_id)
    if not user.enabled:
        raise Forbidden(N_("This account is disabled; ask an administrator."))
    return user


async def sign_out(
    *, session: AsyncSession, user_id: uuid.UUID, actor: Actor = SYSTEM, reason: str = "sign-out"
) -> int:
    """End every sign-in of the account: its refresh tokens stop working at once."""
    await get_user(session=session, user_id=user_id)
    count = await repository.revoke_families(
        session=session, now=utcnow(), reason=reason, user_id=user_id
    )
    await record(session=session, user_id=user_id, action="user.signed-out", actor=actor)
    return count


async def set_enabled(
    *, session: AsyncSession, user_id: uuid.UUID, enabled: bool, actor: Actor = SYSTEM
) -> UserAccount:
    """Disable (and sign out) or re-enable (and unlock) an account."""
    user = await get_user(session=session, user_id=user_id)
    user.enabled = enabled
    user.updated_at = utcnow()
    if enabled:
        user.failed_attempts, user.locked_until = 0, None
    else:
        await repository.revoke_families(
            session=session, now=user.updated_at, reason="disabled", user_id=user_id
        )
    action = "user.enabled" if enabled else "user.disabled"
    await record(session=session, user_id=user_id, action=action, actor=actor)
    return user


async def set_password(
    *, session: AsyncSession, user_id: uuid.UUID, password: str, actor: Actor = SYSTEM
) -> UserAccount:
    """Replace the password, unlock the account and end its sign-ins."""
    user = await get_user(session=session, user_id=user_id)
    user.password_hash = await _hashed(password)
    user.failed_attempts, user.locked_until = 0, None
    user.password_changed_at = user.updated_at = utcnow()
    await repository.revoke_families(
        session=session, now=user.updated_at, reason="password", user_id=user_id
    )
    await record(session=session, user_id=user_id, action="user.password-set", actor=actor)
    return user


async def enrol_totp(
    *, session: AsyncSession, vault: PeopleVault, user_id: uuid.UUID, actor: Actor = SYSTEM
) -> tuple[UserAccount, str]:
    """Give the account a new TOTP secret (replacing any); return the otpauth URI, once."""
    user = await get_user(session=session, user_id=user_id)
    secret = totp.new_secret()
    owner = str(user.user_id)
    user.totp_secret_sealed = vault.seal(owner=owner, field="totp", text=secret)
    user.totp_last_step = None
    user.updated_at = utcnow()
    await record(session=session, user_id=user_id, action="user.totp-enrolled", actor=actor)
    email = vault.open(owner=owner, field="email", sealed=user.email_sealed)
    return user, totp.provisioning_uri(secret, account=email)


async def events(
    *, session: AsyncSession, user_id: uuid.UUID, after: uuid.UUID | None, limit: int
) -> tuple[list[UserEvent], uuid.UUID | None]:
    """Return one page of an account's events and the id to continue after."""
    await get_user(session=session, user_id=user_id)
    rows = await repository.user_events(
        session=session, user_id=user_id, after=after, limit=limit + 1
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1].id if more and rows else None
