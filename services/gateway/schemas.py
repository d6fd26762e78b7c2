"""Request and response shapes of the gateway's own endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from shared.vocabulary import Role

CLIENT_ID_PATTERN = r"^[A-Za-z0-9._-]{3,64}$"
EXAMPLE_ORG = "0192f000-0000-7000-8000-000000000001"


class TokenResponse(BaseModel):
    """An access token (RFC 6749 §5.1)."""

    access_token: str = Field(examples=["eyJhbGciOiJFUzI1NiIsImtpZCI6Ii4uLiJ9.e30.sig"])
    token_type: str = Field("Bearer", examples=["Bearer"])
    expires_in: int = Field(examples=[300])
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
