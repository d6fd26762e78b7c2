"""Rules of the client registry: who may hold which role, secrets shown once, keys validated."""

from __future__ import annotations

import uuid
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway import repository
from services.gateway.errors import (
    ClientExists,
    ClientNotFound,
    InvalidClientJwks,
    ServiceRoleOutsidePlatform,
)
from services.gateway.hashing import hash_generated_secret, hash_secret, new_secret
from services.gateway.models import ApiClient, SigningKey
from services.gateway.schemas import ClientCreate
from shared.clock import utcnow
from shared.demo import PLATFORM_ORG
from shared.i18n import N_
from shared.ids import new_id
from shared.vocabulary import Role

PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "k"})
SIGNING_KTYS = frozenset({"EC", "RSA", "OKP"})


def checked_jwks(jwks: dict[str, Any]) -> dict[str, Any]:
    """Accept only public signing keys that joserfc can import, each with a kid."""
    keys = jwks.get("keys")
    if not isinstance(keys, list) or not keys:
        raise InvalidClientJwks()
    for key in keys:
        if not isinstance(key, dict) or not key.get("kid") or key.get("kty") not in SIGNING_KTYS:
            raise InvalidClientJwks()
        if PRIVATE_MEMBERS & set(key):
            raise InvalidClientJwks(
                N_(
                    "The key set contains private key material. Register only the public keys; "
                    "keep private keys on your own systems."
                )
            )
    try:
        KeySet.import_key_set({"keys": keys})
    except (JoseError, ValueError, TypeError):
        raise InvalidClientJwks() from None
    return {"keys": keys}


async def create_client(
    *,
    session: AsyncSession,
    client_in: ClientCreate,
    secret: str | None = None,
    pepper: bytes | None = None,
) -> tuple[ApiClient, str]:
    """Register a client; return it with its secret (generated unless given).

    A generated secret is stored as an HMAC under `pepper` (argon2id without one); a given
    secret, of unknown entropy, always as argon2id.
    """
    roles = [Role(role).value for role in dict.fromkeys(client_in.roles)]
    if Role.INTERNAL_CALLER.value in roles and client_in.org_id != PLATFORM_ORG:
        raise ServiceRoleOutsidePlatform()
    secret_hash = hash_secret(secret) if secret else None
    secret = secret or new_secret()
    now = utcnow()
    client = ApiClient(
        client_id=client_in.client_id or str(new_id()),
        name=client_in.name,
        org_id=client_in.org_id,
        roles=roles,
        secret_hash=secret_hash or hash_generated_secret(secret, pepper=pepper),
        jwks=checked_jwks(client_in.jwks.model_dump()) if client_in.jwks else None,
        enabled=True,
        created_at=now,
        updated_at=now,
        secret_rotated_at=now,
    )
    if not await repository.add_client(session=session, client=client):
        raise ClientExists()
    return client, secret


async def get_client(*, session: AsyncSession, client_id: str) -> ApiClient:
    """Return the client or raise 404."""
    client = await repository.get_client(session=session, client_id=client_id)
    if client is None:
        raise ClientNotFound()
    return client


async def set_enabled(*, session: AsyncSession, client_id: str, enabled: bool) -> ApiClient:
    """Disable or re-enable a client; disabled clients get no new tokens."""
    client = await get_client(session=session, client_id=client_id)
    client.enabled = enabled
    client.updated_at = utcnow()
    return client


async def rotate_secret(
    *, session: AsyncSession, client_id: str, pepper: bytes | None = None
) -> tuple[ApiClient, str]:
    """Replace the client's secret; the old one stops working at once."""
    client = await get_client(session=session, client_id=client_id)
    secret = new_secret()
    client.secret_hash = hash_generated_secret(secret, pepper=pepper)
    client.secret_rotated_at = client.updated_at = utcnow()
    return client, secret


async def set_jwks(*, session: AsyncSession, client_id: str, jwks: dict[str, Any]) -> ApiClient:
    """Register (replace) the client's public keys for private_key_jwt."""
    client = await get_client(session=session, client_id=client_id)
    client.jwks = checked_jwks(jwks)
    client.updated_at = utcnow()
    return client


async def list_clients(
    *, session: AsyncSession, org_id: uuid.UUID | None, after: str | None, limit: int
) -> tuple[list[ApiClient], str | None]:
    """Return one page of clients and the id to continue after."""
    rows = await repository.list_clients(
        session=session, org_id=org_id, after=after, limit=limit + 1
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1].client_id if more and rows else None


async def published_signing_keys(*, session: AsyncSession, published: set[str]) -> list[SigningKey]:
    """Return the stored signing keys that are still published, newest first."""
    rows = await repository.signing_keys(session=session)
    return [row for row in rows if row.kid in published]


async def get_signing_key(*, session: AsyncSession, kid: str) -> SigningKey:
    """Return a signing key the key ring just stored."""
    row = await repository.get_signing_key(session=session, kid=kid)
    assert row is not None  # the key ring committed it before handing out its kid
    return row
