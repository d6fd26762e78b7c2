"""Tables of the gateway service (SQLAlchemy 2.0): API clients, signing keys, used assertions,
and the people who sign in (accounts, authorization codes, refresh-token families, their audit)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Integer, LargeBinary, String, Text, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import JSONType, UTCDateTime, service_metadata


class Base(DeclarativeBase):
    """Declarative base of the gateway service's own database."""

    metadata = service_metadata()


class ApiClient(Base):
    """A partner system or service that obtains access tokens (OAuth 2.0 client)."""

    __tablename__ = "api_client"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    org_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    roles: Mapped[list[str]] = mapped_column(JSONType)
    secret_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    secret_rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SigningKey(Base):
    """An ES256 token-signing key; the private half is encrypted with the key-encryption key."""

    __tablename__ = "signing_key"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_jwk_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    kek_id: Mapped[str] = mapped_column(String(32))
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    retire_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class UsedAssertion(Base):
    """A client assertion already used (RFC 7523 jti), kept until it expires."""

    __tablename__ = "used_assertion"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    jti: Mapped[str] = mapped_column(String(200), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class UserAccount(Base):
    """A person who signs in at the gateway for an organisation, with the roles they hold.

    E-mail and display name are personal data: stored sealed (AES-GCM under a key derived from
    the key-encryption key), the e-mail found by a keyed hash of its case-folded form.
    """

    __tablename__ = "user_account"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    roles: Mapped[list[str]] = mapped_column(JSONType)
    email_index: Mapped[str] = mapped_column(String(64), unique=True)
    email_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    display_name_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    password_hash: Mapped[str] = mapped_column(String(200))
    totp_secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    totp_last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuthorizationCode(Base):
    """A single-use authorization code (RFC 6749 §4.1), stored as its SHA-256."""

    __tablename__ = "authorization_code"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    redirect_uri: Mapped[str] = mapped_column(Text)
    code_challenge: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    family_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)


class RefreshFamily(Base):
    """One sign-in: the chain of refresh tokens rotated from one authorization code."""

    __tablename__ = "refresh_family"

    family_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    client_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)


class RefreshToken(Base):
    """A refresh token of a family, stored as its SHA-256; used once, then rotated."""

    __tablename__ = "refresh_token"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class UserEvent(Base):
    """What happened to an account and who did it (admin actions, lockouts, reuse); no e-mail."""

    __tablename__ = "user_event"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    action: Mapped[str] = mapped_column(String(64))
    actor_client_id: Mapped[str] = mapped_column(String(128))
    actor_org_id: Mapped[str] = mapped_column(String(64))
    actor_person_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
