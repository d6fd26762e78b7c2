"""Rows of the gateway become response models here, and nowhere else."""

from __future__ import annotations

from services.gateway.models import ApiClient, SigningKey
from services.gateway.schemas import ClientRead, SigningKeyRead


def client_read(client: ApiClient) -> ClientRead:
    """Shape a stored client for callers (never its secret hash)."""
    return ClientRead(
        client_id=client.client_id,
        name=client.name,
        org_id=client.org_id,
        roles=list(client.roles),
        enabled=client.enabled,
        has_secret=client.secret_hash is not None,
        jwks_kids=[str(k.get("kid")) for k in (client.jwks or {}).get("keys", [])],
        created_at=client.created_at,
        updated_at=client.updated_at,
        secret_rotated_at=client.secret_rotated_at,
    )


def signing_key_read(row: SigningKey, *, current: bool) -> SigningKeyRead:
    """Shape a token-signing key: its public identity and lifetime, never the private half."""
    return SigningKeyRead(
        kid=row.kid, created_at=row.created_at, retire_at=row.retire_at, current=current
    )
