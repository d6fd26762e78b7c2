"""Errors of the gateway: OAuth 2.0 token errors (RFC 6749 §5.2) and proxy problems."""

from __future__ import annotations

from shared.errors import (
    BadRequest,
    Conflict,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    TooManyRequests,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from shared.i18n import N_, Message, localize


class OAuthError(Exception):
    """A token-endpoint error, answered as RFC 6749 §5.2 JSON rather than problem+json."""

    status = 400
    error = "invalid_request"

    def __init__(self, description: str | Message) -> None:
        # `error` is a code and stays as it is; `description` is shown in the caller's language.
        self.description = description
        super().__init__(localize(description, "en"))


class InvalidRequest(OAuthError):
    """The request is malformed, repeats a parameter or mixes authentication methods."""

    error = "invalid_request"


class InvalidClient(OAuthError):
    """Client authentication failed (unknown client, wrong secret, bad assertion)."""

    status = 401
    error = "invalid_client"


class UnauthorizedClient(OAuthError):
    """The client authenticated but may not obtain tokens (disabled)."""

    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    """Only the client_credentials grant is supported."""

    error = "unsupported_grant_type"


class InvalidGrant(OAuthError):
    """The authorization code or refresh token is invalid, expired, used or not this client's."""

    error = "invalid_grant"


class InvalidScope(OAuthError):
    """The requested scope is malformed or exceeds what the client holds."""

    error = "invalid_scope"


class ClientNotFound(NotFound):
    """No API client has this id."""

    slug = "client-not-found"
    detail = N_("No API client has this id. List clients with GET /admin/clients.")


class ClientExists(Conflict):
    """An API client with this id already exists."""

    slug = "client-exists"
    detail = N_("An API client with this id already exists; choose another id or omit it.")


class InvalidClientJwks(BadRequest):
    """The JWKS registered for private_key_jwt is unusable."""

    slug = "invalid-client-jwks"
    detail = N_(
        "The key set must be a JWKS of public signing keys (EC P-256, RSA or Ed25519), "
        "each with a 'kid', and no private key material."
    )


class ServiceRoleOutsidePlatform(BadRequest):
    """The `service` role belongs only to refex's own services."""

    slug = "service-role-outside-platform"
    detail = N_(
        "The 'service' role is reserved for refex's own services (the platform organisation)."
    )


class UserNotFound(NotFound):
    """No account has this id."""

    slug = "user-not-found"
    detail = N_("No account has this id. List accounts with GET /admin/users.")


class UserExists(Conflict):
    """An account with this e-mail address already exists."""

    slug = "user-exists"
    detail = N_(
        "An account with this e-mail address already exists (e-mails are compared without "
        "regard to case); find it with GET /admin/users, or use another address."
    )


class RoleNotForPeople(BadRequest):
    """The `service` role belongs to refex's own services, never to a person."""

    slug = "role-not-for-people"
    detail = N_(
        "The 'service' role is for refex's own services and cannot be given to a person; "
        "choose the roles the person works in."
    )


class RouteNotFound(NotFound):
    """No public API lives at this address."""

    slug = "not-found"
    detail = N_("Nothing is published at this address. Check the path against /docs.")


class ProxyBodyTooLarge(PayloadTooLarge):
    """The request body exceeds the route's limit."""


class HeadersTooLarge(ServiceError):
    """The request's headers are larger than the gateway accepts."""

    status = 431
    title = N_("Request headers too large")
    slug = "headers-too-large"
    detail = N_("The request headers are too large. Send fewer or shorter headers (e.g. cookies).")


class RateLimited(TooManyRequests):
    """This client sent more requests than its rate limit allows."""

    detail = N_("Your client sent too many requests. Wait the seconds in Retry-After, then retry.")


class UpstreamDown(UpstreamUnavailable):
    """The upstream service refused or dropped the connection."""


class UpstreamSlow(UpstreamTimeout):
    """The upstream service did not answer within the timeout."""
