"""Rows of the gateway become response models here, and nowhere else."""

from __future__ import annotations

from services.gateway.models import ApiClient, SigningKey, UserAccount, UserEvent
from services.gateway.schemas import ClientRead, SigningKeyRead, UserEventRead, UserInfo, UserRead
from services.gateway.vault import PeopleVault
from shared.clock import utcnow


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


def user_read(user: UserAccount, vault: PeopleVault) -> UserRead:
    """Shape an account for admins: its fields opened, never the password or TOTP secret."""
    owner = str(user.user_id)
    return UserRead(
        user_id=user.user_id,
        org_id=user.org_id,
        roles=list(user.roles),
        email=vault.open(owner=owner, field="email", sealed=user.email_sealed),
        display_name=vault.open(owner=owner, field="name", sealed=user.display_name_sealed),
        enabled=user.enabled,
        totp_enabled=user.totp_secret_sealed is not None,
        locked_until=user.locked_until
        if user.locked_until and user.locked_until > utcnow()
        else None,
        created_at=user.created_at,
        updated_at=user.updated_at,
        password_changed_at=user.password_changed_at,
    )


def user_event_read(row: UserEvent) -> UserEventRead:
    """Shape an account event."""
    return UserEventRead(
        id=row.id,
        action=row.action,
        actor_client_id=row.actor_client_id,
        actor_org_id=row.actor_org_id,
        actor_person_id=row.actor_person_id,
        at=row.at,
    )


def user_info(user: UserAccount, vault: PeopleVault) -> UserInfo:
    """Shape the signed-in person's own account for them."""
    read = user_read(user, vault)
    return UserInfo(
        sub=f"user:{user.user_id}",
        user_id=user.user_id,
        org_id=user.org_id,
        roles=read.roles,
        name=read.display_name,
        email=read.email,
        totp_enabled=read.totp_enabled,
    )
