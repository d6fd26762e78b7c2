"""The ledger's Ed25519 key: loaded from settings, or kept under var/ in development."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.consent.settings import ConsentSettings
from shared.i18n import Message

TREE_HEAD_FORMAT = "refex-consent-ledger/tree-head/v1"
logger = logging.getLogger("refex.consent.signing")


class SigningKeyError(ValueError):
    """The configured signing key cannot be used; the message says how to fix it."""


def key_id_of(public_key: bytes) -> str:
    """Return the short identifier of a raw Ed25519 public key."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def tree_head_message(*, tree_size: int, root_hash: bytes, timestamp_ms: int) -> bytes:
    """Return the exact bytes a tree head signature covers (canonical JSON)."""
    statement = {
        "format": TREE_HEAD_FORMAT,
        "root_hash": root_hash.hex(),
        "timestamp_ms": timestamp_ms,
        "tree_size": tree_size,
    }
    return orjson.dumps(statement, option=orjson.OPT_SORT_KEYS)


def signature_is_valid(
    *, public_key: bytes, signature: bytes, tree_size: int, root_hash: bytes, timestamp_ms: int
) -> bool:
    """Return True when `signature` by `public_key` covers this tree head."""
    message = tree_head_message(tree_size=tree_size, root_hash=root_hash, timestamp_ms=timestamp_ms)
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


class TreeHeadSigner:
    """Signs tree heads with the ledger's private key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = key_id_of(self.public_key)

    def sign(self, *, tree_size: int, root_hash: bytes, timestamp_ms: int) -> bytes:
        """Return the Ed25519 signature of a tree head."""
        message = tree_head_message(
            tree_size=tree_size, root_hash=root_hash, timestamp_ms=timestamp_ms
        )
        return self._key.sign(message)


def generate_key_text() -> str:
    """Return a new private key as the base64 text REFEX_CONSENT_LEDGER_SIGNING_KEY takes."""
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    return base64.b64encode(seed).decode()


def _key_from_text(text: str, source: str) -> Ed25519PrivateKey:
    try:
        seed = base64.b64decode(text.strip(), validate=True)
        return Ed25519PrivateKey.from_private_bytes(seed)
    except (binascii.Error, ValueError):
        raise SigningKeyError(
            Message(
                "{source} is not an Ed25519 key: expected 32 bytes in base64 "
                "(make one with `refex ledger keygen`)",
                source=source,
            )
        ) from None


def _development_key(path: Path) -> Ed25519PrivateKey:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(generate_key_text())
        logger.warning("generated a development ledger signing key", extra={"path": str(path)})
    return _key_from_text(path.read_text(), str(path))


def load_signer(settings: ConsentSettings) -> TreeHeadSigner:
    """Return the signer: the configured key, the development key file, or a test key."""
    if settings.ledger_signing_key is not None:
        source = ConsentSettings.env_name("ledger_signing_key")
        return TreeHeadSigner(
            _key_from_text(settings.ledger_signing_key.get_secret_value(), source)
        )
    if settings.environment == "development":
        return TreeHeadSigner(_development_key(settings.ledger_signing_key_file))
    if settings.environment == "production":
        raise SigningKeyError(
            Message(
                "{variable} is required in production: generate one with `refex ledger keygen` "
                "and keep it secret",
                variable=ConsentSettings.env_name("ledger_signing_key"),
            )
        )
    return TreeHeadSigner(Ed25519PrivateKey.generate())  # tests: a throwaway key


def configured_public_key(settings: ConsentSettings) -> bytes | None:
    """Return the public key verification should trust, if one is configured or on disk."""
    if settings.ledger_signing_key is None and not (
        settings.environment == "development" and settings.ledger_signing_key_file.exists()
    ):
        return None
    return load_signer(settings).public_key
