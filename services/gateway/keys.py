"""Token-signing keys: ES256, encrypted at rest with a key-encryption key, rotated with overlap."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import time
from datetime import datetime, timedelta
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from sqlalchemy import or_, select, update

from services.gateway.models import SigningKey
from services.gateway.settings import DEV_KEK_FILE, GatewaySettings
from shared.auth import StaticJwks
from shared.clock import utcnow
from shared.db import Database

KEK_BYTES = 32
NONCE_BYTES = 12
TOKEN_TYPE = "at+jwt"  # noqa: S105 (a media type, not a secret)


class KeyEncryptionKeyError(RuntimeError):
    """The key-encryption key is missing, malformed or not the one the keys were sealed with."""


def decode_kek(text: str) -> bytes:
    """Decode a base64url key-encryption key and check it is 32 bytes."""
    try:
        raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except ValueError:
        raw = b""
    if len(raw) != KEK_BYTES:
        raise KeyEncryptionKeyError(
            "the key-encryption key must be 32 random bytes in base64url; "
            "make one with: python -c 'import secrets,base64;"
            "print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())'"
        )
    return raw


def new_kek_text() -> str:
    """Return a fresh key-encryption key in base64url."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEK_BYTES)).decode()


def load_kek(settings: GatewaySettings) -> bytes:
    """Return the key-encryption key from settings or a file; refuse to go on without one.

    Development generates one under var/; the test environment (throwaway databases) uses an
    ephemeral one; production must be given one.
    """
    if settings.key_encryption_key is not None:
        return decode_kek(settings.key_encryption_key.get_secret_value())
    path = settings.key_encryption_key_file
    if path is None and settings.environment == "test":
        return secrets.token_bytes(KEK_BYTES)
    if path is None and settings.environment == "development":
        path = DEV_KEK_FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(new_kek_text())
    if path is None:
        raise KeyEncryptionKeyError(
            "refex gateway: no key-encryption key for the token-signing keys: set "
            "REFEX_GATEWAY_KEY_ENCRYPTION_KEY (base64url of 32 random bytes) or "
            "REFEX_GATEWAY_KEY_ENCRYPTION_KEY_FILE"
        )
    try:
        return decode_kek(path.read_text())
    except OSError:
        raise KeyEncryptionKeyError(f"cannot read the key-encryption key file {path}") from None


def kek_id(kek: bytes) -> str:
    """Return a short, non-secret fingerprint of the key-encryption key."""
    return hashlib.sha256(b"refex-kek-id" + kek).hexdigest()[:16]


def seal(kek: bytes, kid: str, private_jwk: dict[str, Any]) -> bytes:
    """Encrypt a private JWK with AES-256-GCM bound to its kid."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(kek).encrypt(nonce, orjson.dumps(private_jwk), kid.encode())


def unseal(kek: bytes, kid: str, sealed: bytes) -> dict[str, Any]:
    """Decrypt a private JWK sealed by `seal`."""
    try:
        plain = AESGCM(kek).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], kid.encode())
    except InvalidTag:
        raise KeyEncryptionKeyError(
            f"signing key {kid} cannot be decrypted: the key-encryption key is not the one "
            "it was sealed with; restore the original REFEX_GATEWAY_KEY_ENCRYPTION_KEY"
        ) from None
    loaded: dict[str, Any] = orjson.loads(plain)
    return loaded


def generate_signing_key() -> ECKey:
    """Make a new P-256 key whose kid is its RFC 7638 thumbprint."""
    key = ECKey.generate_key("P-256", parameters={"use": "sig", "alg": "ES256"})
    return ECKey.import_key(key.as_dict(private=True), parameters={"kid": key.thumbprint()[:32]})


class KeyRing:
    """The current signing key and the published public keys, loaded from the database."""

    def __init__(self, database: Database, kek: bytes, *, overlap_s: int) -> None:
        self._database = database
        self._kek = kek
        self._overlap = timedelta(seconds=overlap_s)
        self._current: ECKey | None = None
        self._jwks: dict[str, Any] = {"keys": []}
        self._published: list[tuple[datetime | None, dict[str, Any]]] = []
        self._next_retire_at: datetime | None = None

    @property
    def current_kid(self) -> str:
        """Return the kid that signs new tokens."""
        return str(self._signing_key().kid)

    def public_jwks(self) -> dict[str, Any]:
        """Return the JWKS of every key whose tokens may still be in circulation.

        A rotated-out key leaves the set the moment its overlap ends, not at the next reload.
        """
        if self._next_retire_at is not None and utcnow() >= self._next_retire_at:
            self._publish(self._published)
        return self._jwks

    def _publish(self, published: list[tuple[datetime | None, dict[str, Any]]]) -> None:
        now = utcnow()
        self._published = [(at, jwk) for at, jwk in published if at is None or at > now]
        self._next_retire_at = min((at for at, _ in self._published if at), default=None)
        self._jwks = {"keys": [jwk for _, jwk in self._published]}

    def sign(self, claims: dict[str, Any]) -> str:
        """Sign `claims` as an ES256 access token with the current key."""
        key = self._signing_key()
        header = {"alg": "ES256", "kid": key.kid, "typ": TOKEN_TYPE}
        return jwt.encode(header, claims, key, algorithms=["ES256"])

    def _signing_key(self) -> ECKey:
        if self._current is None:
            raise RuntimeError("the key ring is not loaded")
        return self._current

    async def load(self) -> None:
        """Read the keys; create the first one when there is none."""
        rows = await self._published_rows()
        if not any(row.retire_at is None for row in rows):
            await self._insert(generate_signing_key())
            rows = await self._published_rows()
        newest = next(row for row in rows if row.retire_at is None)
        self._current = ECKey.import_key(
            unseal(self._kek, newest.kid, newest.private_jwk_encrypted)
        )
        self._publish([(row.retire_at, row.public_jwk) for row in rows])

    async def rotate(self) -> str:
        """Start signing with a new key; older keys stay published for the overlap period."""
        key = generate_signing_key()
        async with self._database.sessionmaker.begin() as session:
            await session.execute(
                update(SigningKey)
                .where(SigningKey.retire_at.is_(None))
                .values(retire_at=utcnow() + self._overlap)
            )
            session.add(self._row(key))
        await self.load()
        return str(key.kid)

    async def _published_rows(self) -> list[SigningKey]:
        async with self._database.sessionmaker() as session:
            result = await session.scalars(
                select(SigningKey)
                .where(or_(SigningKey.retire_at.is_(None), SigningKey.retire_at > utcnow()))
                .order_by(SigningKey.created_at.desc())
            )
            return list(result)

    async def _insert(self, key: ECKey) -> None:
        async with self._database.sessionmaker.begin() as session:
            session.add(self._row(key))

    def _row(self, key: ECKey) -> SigningKey:
        kid = str(key.kid)
        public = {**key.as_dict(private=False), "kid": kid, "use": "sig", "alg": "ES256"}
        return SigningKey(
            kid=kid,
            private_jwk_encrypted=seal(self._kek, kid, key.as_dict(private=True)),
            kek_id=kek_id(self._kek),
            public_jwk=public,
            created_at=utcnow(),
            retire_at=None,
        )


class KeyRingJwks(StaticJwks):
    """The gateway's own public keys for its verifier; an unknown kid reloads them from the
    database, at most once a second, since another replica may have rotated."""

    def __init__(self, keys: KeyRing, *, min_reload_interval_s: float = 1.0) -> None:
        super().__init__(keys.public_jwks)
        self._keys = keys
        self._interval = min_reload_interval_s
        self._reloaded_at = 0.0

    async def key_set(self, *, refresh: bool) -> KeySet:
        if refresh and time.monotonic() - self._reloaded_at >= self._interval:
            self._reloaded_at = time.monotonic()
            await self._keys.load()
        return await super().key_set(refresh=refresh)
