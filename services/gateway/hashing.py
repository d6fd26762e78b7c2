"""Client secrets: generated once, stored hashed, verified in constant time.

Secrets the gateway generates carry 256 random bits, so a keyed HMAC-SHA-256 with a server
pepper protects them as well as a slow hash would, at a fraction of the CPU: nobody can search
a 256-bit space, and a stolen table without the pepper is useless. Secrets chosen by people or
deployments (unknown entropy) and every hash stored before keep argon2id.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from functools import lru_cache

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

SECRET_BYTES = 32
HMAC_PREFIX = "hmac-sha256$"
# OWASP's minimum argon2id profile.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
logger = logging.getLogger("refex.gateway.hashing")


def new_secret() -> str:
    """Return a fresh client secret (URL-safe, 256 bits)."""
    return secrets.token_urlsafe(SECRET_BYTES)


def hash_secret(secret: str) -> str:
    """Return the argon2id hash of `secret` (for secrets of unknown entropy)."""
    return _hasher.hash(secret)


def hash_generated_secret(secret: str, *, pepper: bytes | None) -> str:
    """Return the HMAC-SHA-256 of a secret from `new_secret`, or argon2id without a pepper."""
    if pepper is None:
        return hash_secret(secret)
    return HMAC_PREFIX + _hmac(pepper, secret)


def _hmac(pepper: bytes, secret: str) -> str:
    return hmac.new(pepper, secret.encode("utf-8"), hashlib.sha256).hexdigest()


@lru_cache(maxsize=1)
def _decoy_pepper() -> bytes:
    return secrets.token_bytes(32)


def _verify_argon2(stored_hash: str, secret: str) -> bool:
    try:
        return _hasher.verify(stored_hash, secret)
    except (VerificationError, InvalidHashError):
        return False


def _verify_hmac(stored_hash: str, secret: str, pepper: bytes | None) -> bool:
    if pepper is None:
        logger.warning("an HMAC client secret cannot be checked: no secret pepper is configured")
        return False
    expected = stored_hash.removeprefix(HMAC_PREFIX)
    return hmac.compare_digest(expected, _hmac(pepper, secret))


async def verify_secret(stored_hash: str | None, secret: str, *, pepper: bytes | None) -> bool:
    """Check `secret` against `stored_hash`; a missing hash fails after a cheap decoy check."""
    if stored_hash is None:
        # An unknown client id costs one HMAC, not an argon2 run: client ids are not secret
        # (every token names its client), and bogus ids must not buy the caller our CPU.
        _verify_hmac(HMAC_PREFIX, secret, _decoy_pepper())
        return False
    if stored_hash.startswith(HMAC_PREFIX):
        return _verify_hmac(stored_hash, secret, pepper)
    return await anyio.to_thread.run_sync(_verify_argon2, stored_hash, secret)


def hash_password(password: str) -> str:
    """Return the argon2id hash of a person's password."""
    return _hasher.hash(password)


@lru_cache(maxsize=1)
def _decoy_password_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


async def verify_password(stored_hash: str | None, password: str) -> bool:
    """Check a password against its argon2id hash; without an account, against a decoy.

    Unlike client ids, e-mails are personal: an unknown one must cost as much as a known one,
    or the answer time would tell who has an account.
    """
    target = stored_hash if stored_hash is not None else _decoy_password_hash()
    verified = await anyio.to_thread.run_sync(_verify_argon2, target, password)
    return verified and stored_hash is not None
