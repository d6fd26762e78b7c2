"""Request and response shapes of the gateway's own endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator

from shared.i18n import N_
from shared.vocabulary import Role

CLIENT_ID_PATTERN = r"^[A-Za-z0-9._-]{3,64}$"
EXAMPLE_ORG = "0192f000-0000-7000-8000-000000000001"


class TokenResponse(BaseModel):
    """An access token (RFC 6749 §5.1); for a person signed in, also a refresh token."""

    access_token: str = Field(examples=["eyJhbGciOiJFUzI1NiIsImtpZCI6Ii4uLiJ9.e30.sig"])
    token_type: str = Field("Bearer", examples=["Bearer"])
    expires_in: int = Field(examples=[300])
    refresh_token: str | None = Field(
        None,
        examples=["k3Jd…"],
        description="authorization_code and refresh_token grants only: use it once, for the "
        "next access token; the answer brings a new one.",
    )
    scope: str = Field(examples=["host_office"])


class OAuthErrorBody(BaseModel):
    """A token-endpoint error (RFC 6749 §5.2)."""

    error: str = Field(examples=["invalid_client"])
    error_description: str = Field(examples=["Unknown client or wrong secret."])


class Jwks(BaseModel):
    """A JSON Web Key Set of public keys."""

    keys: list[dict[str, Any]] = Field(
        examples=[[{"kty": "EC", "crv": "P-256", "x": "…", "y": "…", "kid": "k1", "alg": "ES256"}]]
    )


class ClientCreate(BaseModel):
    """A new API client: its organisation, roles, and optionally its own id and public keys."""

    client_id: str | None = Field(
        None,
        pattern=CLIENT_ID_PATTERN,
        examples=["clinic-lagos-emr"],
        description="Leave empty to get a generated id.",
    )
    name: str = Field(min_length=1, max_length=200, examples=["Lagos clinic EMR"])
    org_id: uuid.UUID = Field(examples=[EXAMPLE_ORG])
    roles: list[Role] = Field(min_length=1, examples=[["provider"]])
    jwks: Jwks | None = Field(None, description="Public keys for private_key_jwt, if used.")


class ClientRead(BaseModel):
    """An API client as the registry holds it (never its secret)."""

    client_id: str = Field(examples=["clinic-lagos-emr"])
    name: str = Field(examples=["Lagos clinic EMR"])
    org_id: uuid.UUID = Field(examples=[EXAMPLE_ORG])
    roles: list[str] = Field(examples=[["provider"]])
    enabled: bool = Field(examples=[True])
    has_secret: bool = Field(examples=[True])
    jwks_kids: list[str] = Field(examples=[["partner-key-2026"]])
    created_at: datetime
    updated_at: datetime
    secret_rotated_at: datetime | None = None


class ClientCredentials(BaseModel):
    """A client's id and its new secret: shown once, store it now."""

    client: ClientRead
    client_secret: str = Field(examples=["Xq3…"], description="Shown only in this response.")


class ClientPage(BaseModel):
    """One page of API clients."""

    items: list[ClientRead]
    next_cursor: str | None = Field(None, examples=["eyJrIjpbImNsaW5pYyJdfQ"])


class SigningKeyRead(BaseModel):
    """A published token-signing key (public half only)."""

    kid: str = Field(examples=["AUeLSkaKmLnDNDcd8BibDUsc3lBzqzzV"])
    created_at: datetime
    retire_at: datetime | None = None
    current: bool = Field(examples=[True])


class OpenApiStatus(BaseModel):
    """Which services' API descriptions are in the merged document."""

    loaded: list[str] = Field(examples=[["directory", "consent", "referral"]])
    missing: list[str] = Field(examples=[[]])
    operations: int = Field(examples=[42])


class UpstreamHealth(BaseModel):
    """Whether each service behind the gateway (and Redis, when configured) answers now."""

    status: str = Field(examples=["unavailable"])
    checks: dict[str, str] = Field(
        examples=[{"directory": "ok", "consent": "unreachable", "referral": "ok"}]
    )
    openapi_missing: list[str] = Field(
        description="Services whose API description the merged /openapi.json still lacks.",
        examples=[["consent"]],
    )


EXAMPLE_USER = "0192f000-0000-7000-8000-000000000301"
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 256


def _checked_email(value: str) -> str:
    local, at, domain = value.strip().rpartition("@")
    if not at or not local or "." not in domain.strip(".") or any(c.isspace() for c in value):
        raise ValueError(N_("Give an e-mail address such as name@example.org."))
    return value.strip()


class UserCreate(BaseModel):
    """A new person who signs in for an organisation with the given roles."""

    org_id: uuid.UUID = Field(examples=[EXAMPLE_ORG])
    roles: list[Role] = Field(min_length=1, examples=[["host_office"]])
    email: str = Field(max_length=254, examples=["caseworker@return-office.example"])
    display_name: str = Field(min_length=1, max_length=200, examples=["A. Caseworker"])
    password: str | None = Field(
        None,
        min_length=MIN_PASSWORD_CHARS,
        max_length=MAX_PASSWORD_CHARS,
        examples=["correct horse battery staple"],
        description="Leave empty to get a generated one (shown once).",
    )

    _email = field_validator("email")(_checked_email)


class UserRead(BaseModel):
    """An account as the gateway holds it (never its password or second-factor secret)."""

    user_id: uuid.UUID = Field(examples=[EXAMPLE_USER])
    org_id: uuid.UUID = Field(examples=[EXAMPLE_ORG])
    roles: list[str] = Field(examples=[["host_office"]])
    email: str = Field(examples=["caseworker@return-office.example"])
    display_name: str = Field(examples=["A. Caseworker"])
    enabled: bool = Field(examples=[True])
    totp_enabled: bool = Field(examples=[False])
    locked_until: datetime | None = Field(None, description="Set while sign-in is locked.")
    created_at: datetime
    updated_at: datetime
    password_changed_at: datetime


class UserCredentials(BaseModel):
    """A new account and, when the gateway chose it, its first password (shown once)."""

    user: UserRead
    password: str | None = Field(
        None, examples=["t8Vq…"], description="Only when generated: pass it on securely now."
    )


class UserPage(BaseModel):
    """One page of accounts."""

    items: list[UserRead]
    next_cursor: str | None = Field(None, examples=["eyJrIjpbIjAxOTIi…"])


class PasswordSet(BaseModel):
    """A new password for an account."""

    password: str = Field(
        min_length=MIN_PASSWORD_CHARS,
        max_length=MAX_PASSWORD_CHARS,
        examples=["correct horse battery staple"],
    )


class TotpEnrolment(BaseModel):
    """A second factor just enrolled: show the URI (as a QR code) to its owner once."""

    user: UserRead
    otpauth_uri: str = Field(
        examples=["otpauth://totp/refex:caseworker%40return-office.example?secret=…&issuer=refex"]
    )


class SignOutResult(BaseModel):
    """How many sign-ins (refresh-token families) were ended."""

    user_id: uuid.UUID = Field(examples=[EXAMPLE_USER])
    revoked_sessions: int = Field(examples=[2])


class UserEventRead(BaseModel):
    """Something that happened to an account, and who did it."""

    id: uuid.UUID
    action: str = Field(examples=["user.disabled"])
    actor_client_id: str = Field(examples=["user:0192f000-0000-7000-8000-000000000306"])
    actor_org_id: str = Field(examples=[EXAMPLE_ORG])
    actor_person_id: uuid.UUID | None = None
    at: datetime


class UserEventPage(BaseModel):
    """One page of an account's events, oldest first."""

    items: list[UserEventRead]
    next_cursor: str | None = None


class UserInfo(BaseModel):
    """The person a token was issued to (OpenID Connect UserInfo claims and refex's own)."""

    sub: str = Field(examples=["user:0192f000-0000-7000-8000-000000000301"])
    user_id: uuid.UUID = Field(examples=[EXAMPLE_USER])
    org_id: uuid.UUID = Field(examples=[EXAMPLE_ORG])
    roles: list[str] = Field(examples=[["host_office"]])
    name: str = Field(examples=["A. Caseworker"])
    email: str = Field(examples=["caseworker@return-office.example"])
    totp_enabled: bool = Field(examples=[False])
