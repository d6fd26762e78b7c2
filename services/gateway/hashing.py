"""Client secrets: generated once, stored as argon2id hashes, verified in constant time."""

from __future__ import annotations

import secrets
from functools import lru_cache

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

SECRET_BYTES = 32
# OWASP's minimum argon2id profile: client secrets are 256 random bits, so the hash only has
# to make a stolen table useless, not to stretch a weak password.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


def new_secret() -> str:
    """Return a fresh client secret (URL-safe, 256 bits)."""
    return secrets.token_urlsafe(SECRET_BYTES)


def hash_secret(secret: str) -> str:
    """Return the argon2id hash of `secret`."""
    return _hasher.hash(secret)


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    return _hasher.hash(new_secret())


def _verify(stored_hash: str | None, secret: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _decoy_hash(), secret) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_secret(stored_hash: str | None, secret: str) -> bool:
    """Check `secret` against `stored_hash`; a missing hash costs the same time and fails."""
    return await anyio.to_thread.run_sync(_verify, stored_hash, secret)
