"""Who may sign in: password, lockout after repeated failures, and the second factor.

Every refusal a caller could see before the password is proven is the same (unknown e-mail,
wrong password, disabled or locked account), and costs the same argon2 run, so the answers
never tell who has an account.
"""

from __future__ import annotations

import enum
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway import repository, totp, users
from services.gateway.hashing import verify_password
from services.gateway.models import UserAccount
from services.gateway.settings import GatewaySettings
from services.gateway.vault import PeopleVault
from shared.clock import utcnow
from shared.vocabulary import Role

TICKET_LIFETIME_S = 300


class Step(enum.Enum):
    """Where a sign-in attempt ended."""

    SIGNED_IN = "signed-in"
    REFUSED = "refused"  # generic: no account, wrong password, disabled, locked
    CODE_NEEDED = "code-needed"
    CODE_WRONG = "code-wrong"
    ADMIN_NEEDS_TOTP = "admin-needs-totp"


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of one sign-in step and, once the password held, the account."""

    step: Step
    user: UserAccount | None = None


def _locked(user: UserAccount) -> bool:
    return user.locked_until is not None and user.locked_until > utcnow()


async def _failed(session: AsyncSession, user: UserAccount, settings: GatewaySettings) -> None:
    """Count a failure; the last one allowed locks the account for the lockout time."""
    user.failed_attempts += 1
    if user.failed_attempts >= settings.signin_max_failures:
        user.failed_attempts = 0
        user.locked_until = utcnow() + timedelta(seconds=settings.signin_lockout_s)
        await users.record(session=session, user_id=user.user_id, action="user.locked")


def _succeeded(user: UserAccount) -> None:
    user.failed_attempts, user.locked_until = 0, None


def _second_factor_missing(user: UserAccount, settings: GatewaySettings) -> bool:
    admin = Role.ADMIN.value in user.roles
    return admin and user.totp_secret_sealed is None and settings.environment != "development"


async def with_password(
    *,
    session: AsyncSession,
    vault: PeopleVault,
    settings: GatewaySettings,
    email: str,
    password: str,
) -> Attempt:
    """Check e-mail and password; say whether a second factor must follow."""
    user = await repository.get_user_by_email(session=session, email_index=vault.email_index(email))
    usable = user is not None and user.enabled and not _locked(user)
    verified = await verify_password(user.password_hash if usable and user else None, password)
    if user is None or not usable:
        return Attempt(Step.REFUSED)
    if not verified:
        await _failed(session, user, settings)
        return Attempt(Step.REFUSED)
    if _second_factor_missing(user, settings):
        return Attempt(Step.ADMIN_NEEDS_TOTP, user)
    if user.totp_secret_sealed is not None:
        return Attempt(Step.CODE_NEEDED, user)
    _succeeded(user)
    return Attempt(Step.SIGNED_IN, user)


async def with_code(
    *,
    session: AsyncSession,
    vault: PeopleVault,
    settings: GatewaySettings,
    user_id: uuid.UUID,
    code: str,
) -> Attempt:
    """Check the TOTP code of an account whose password was just proven."""
    user = await repository.get_user(session=session, user_id=user_id)
    if user is None or not user.enabled or _locked(user) or user.totp_secret_sealed is None:
        return Attempt(Step.REFUSED)
    secret = vault.open(owner=str(user.user_id), field="totp", sealed=user.totp_secret_sealed)
    step = totp.matching_step(secret, code, last_step=user.totp_last_step)
    if step is None:
        await _failed(session, user, settings)
        return Attempt(Step.REFUSED if _locked(user) else Step.CODE_WRONG, user)
    user.totp_last_step = step
    _succeeded(user)
    return Attempt(Step.SIGNED_IN, user)


def ticket(vault: PeopleVault, user_id: uuid.UUID, binding: str) -> str:
    """Return a short-lived proof that this browser gave the account's password."""
    expires = str(int(time.time()) + TICKET_LIFETIME_S)
    return f"{user_id}.{expires}.{vault.mac('password-proven', str(user_id), expires, binding)}"


def ticket_user(vault: PeopleVault, value: str, binding: str) -> uuid.UUID | None:
    """Return the account a ticket from `ticket` names, when valid, unexpired and ours."""
    user_text, _, rest = value.partition(".")
    expires, _, mac = rest.partition(".")
    try:
        user_id = uuid.UUID(user_text)
        expired = int(expires) < time.time()
    except ValueError:
        return None
    if expired or not vault.mac_matches(mac, "password-proven", user_text, expires, binding):
        return None
    return user_id
