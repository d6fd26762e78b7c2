"""Queries of the gateway's own tables; no HTTP and no rules here."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CursorResult, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.models import (
    ApiClient,
    AuthorizationCode,
    RefreshFamily,
    RefreshToken,
    SigningKey,
    UsedAssertion,
    UserAccount,
    UserEvent,
)


async def get_client(*, session: AsyncSession, client_id: str) -> ApiClient | None:
    """Return the client with this id, or None."""
    return await session.get(ApiClient, client_id)


async def list_clients(
    *, session: AsyncSession, org_id: uuid.UUID | None, after: str | None, limit: int
) -> list[ApiClient]:
    """Return up to `limit` clients ordered by id, after the cursor id."""
    query = select(ApiClient).order_by(ApiClient.client_id).limit(limit)
    if org_id is not None:
        query = query.where(ApiClient.org_id == org_id)
    if after is not None:
        query = query.where(ApiClient.client_id > after)
    return list(await session.scalars(query))


async def signing_keys(*, session: AsyncSession) -> list[SigningKey]:
    """Return every token-signing key, newest first."""
    query = select(SigningKey).order_by(SigningKey.created_at.desc())
    return list(await session.scalars(query))


async def get_signing_key(*, session: AsyncSession, kid: str) -> SigningKey | None:
    """Return the token-signing key with this kid, or None."""
    return await session.get(SigningKey, kid)


async def add_client(*, session: AsyncSession, client: ApiClient) -> bool:
    """Insert a client; return False when the id is taken."""
    try:
        async with session.begin_nested():
            session.add(client)
    except IntegrityError:
        return False
    return True


async def record_assertion(
    *, session: AsyncSession, client_id: str, jti: str, expires_at: datetime, now: datetime
) -> bool:
    """Remember a used assertion id; return False when it was used before."""
    await session.execute(delete(UsedAssertion).where(UsedAssertion.expires_at < now))
    try:
        async with session.begin_nested():
            await session.execute(
                insert(UsedAssertion).values(client_id=client_id, jti=jti, expires_at=expires_at)
            )
    except IntegrityError:
        return False
    return True


async def get_user(*, session: AsyncSession, user_id: uuid.UUID) -> UserAccount | None:
    """Return the account with this id, or None."""
    return await session.get(UserAccount, user_id)


async def get_user_by_email(*, session: AsyncSession, email_index: str) -> UserAccount | None:
    """Return the account whose e-mail has this keyed hash, or None."""
    query = select(UserAccount).where(UserAccount.email_index == email_index)
    return await session.scalar(query)


async def add_user(*, session: AsyncSession, user: UserAccount) -> bool:
    """Insert an account; return False when its e-mail is taken."""
    try:
        async with session.begin_nested():
            session.add(user)
    except IntegrityError:
        return False
    return True


async def list_users(
    *, session: AsyncSession, org_id: uuid.UUID | None, after: uuid.UUID | None, limit: int
) -> list[UserAccount]:
    """Return up to `limit` accounts ordered by id, after the cursor id."""
    query = select(UserAccount).order_by(UserAccount.user_id).limit(limit)
    if org_id is not None:
        query = query.where(UserAccount.org_id == org_id)
    if after is not None:
        query = query.where(UserAccount.user_id > after)
    return list(await session.scalars(query))


async def add_code(*, session: AsyncSession, code: AuthorizationCode, now: datetime) -> None:
    """Store a new authorization code and forget the expired ones."""
    await session.execute(delete(AuthorizationCode).where(AuthorizationCode.expires_at < now))
    session.add(code)


async def claim_code(
    *, session: AsyncSession, code_hash: str, now: datetime
) -> tuple[AuthorizationCode | None, bool]:
    """Mark a code used; return it and whether this call was the first to use it."""
    result = await session.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.code_hash == code_hash, AuthorizationCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    first = _rowcount(result) == 1
    return await session.get(AuthorizationCode, code_hash, populate_existing=True), first


def _rowcount(result: object) -> int:
    return result.rowcount if isinstance(result, CursorResult) else 0


async def add_refresh_token(*, session: AsyncSession, token: RefreshToken) -> None:
    """Store a new refresh token of a family."""
    session.add(token)


async def get_refresh(
    *, session: AsyncSession, token_hash: str
) -> tuple[RefreshToken, RefreshFamily] | None:
    """Return a refresh token and its family, or None."""
    query = (
        select(RefreshToken, RefreshFamily)
        .join(RefreshFamily, RefreshFamily.family_id == RefreshToken.family_id)
        .where(RefreshToken.token_hash == token_hash)
    )
    row = (await session.execute(query)).first()
    return (row[0], row[1]) if row else None


async def use_refresh(*, session: AsyncSession, token_hash: str, now: datetime) -> bool:
    """Mark a refresh token used; return False when it was used before (a replay)."""
    result = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.token_hash == token_hash, RefreshToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


async def revoke_families(
    *,
    session: AsyncSession,
    now: datetime,
    reason: str,
    family_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
) -> int:
    """Revoke one family or every live family of a user; return how many were revoked."""
    query = update(RefreshFamily).where(RefreshFamily.revoked_at.is_(None))
    if family_id is not None:
        query = query.where(RefreshFamily.family_id == family_id)
    if user_id is not None:
        query = query.where(RefreshFamily.user_id == user_id)
    result = await session.execute(
        query.values(revoked_at=now, revoked_reason=reason).execution_options(
            synchronize_session=False
        )
    )
    return _rowcount(result)


async def add_user_event(*, session: AsyncSession, event: UserEvent) -> None:
    """Append an account event."""
    session.add(event)


async def user_events(
    *, session: AsyncSession, user_id: uuid.UUID, after: uuid.UUID | None, limit: int
) -> list[UserEvent]:
    """Return up to `limit` events of an account, oldest first, after the cursor id."""
    query = select(UserEvent).where(UserEvent.user_id == user_id).order_by(UserEvent.id)
    if after is not None:
        query = query.where(UserEvent.id > after)
    return list(await session.scalars(query.limit(limit)))


async def add_family(*, session: AsyncSession, family: RefreshFamily, now: datetime) -> None:
    """Store a new sign-in's refresh-token family and forget the sign-ins that have expired."""
    expired = select(RefreshFamily.family_id).where(RefreshFamily.expires_at < now)
    await session.execute(delete(RefreshToken).where(RefreshToken.family_id.in_(expired)))
    await session.execute(delete(RefreshFamily).where(RefreshFamily.expires_at < now))
    session.add(family)
