"""Queries of the gateway's own tables; no HTTP and no rules here."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.models import ApiClient, SigningKey, UsedAssertion


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
