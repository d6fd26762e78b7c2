"""HTTP routes of the gateway: the token endpoint, its JWKS, and the admin API."""

from __future__ import annotations

import asyncio
import math
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from services.gateway import grants, oauth
from services.gateway import service as registry
from services.gateway.dependencies import AdminPrincipal
from services.gateway.errors import InvalidRequest, OAuthError
from services.gateway.keys import KeyRing
from services.gateway.openapi import OpenApiCatalog
from services.gateway.ratelimit import request_address
from services.gateway.schemas import (
    ClientCreate,
    ClientCredentials,
    ClientPage,
    ClientRead,
    Jwks,
    OAuthErrorBody,
    OpenApiStatus,
    SigningKeyRead,
    TokenResponse,
    UpstreamHealth,
)
from services.gateway.settings import GatewaySettings
from services.gateway.shaping import client_read, signing_key_read
from shared.db import SessionDep
from shared.errors import TooManyRequests, problem_responses
from shared.i18n import N_, localize
from shared.pagination import PageParams, decode_cursor, encode_cursor, page_params

router = APIRouter()
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
TOKEN_FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["grant_type"],
    "properties": {
        "grant_type": {
            "type": "string",
            "enum": ["client_credentials", "authorization_code", "refresh_token"],
        },
        "scope": {"type": "string", "description": "Space-separated roles to narrow the token."},
        "client_id": {"type": "string", "examples": ["refex-web"]},
        "code": {
            "type": "string",
            "description": "authorization_code: the code from the redirect.",
        },
        "redirect_uri": {"type": "string", "description": "authorization_code: as at authorize."},
        "code_verifier": {"type": "string", "description": "authorization_code: PKCE verifier."},
        "refresh_token": {"type": "string", "description": "refresh_token: the last one issued."},
        "client_secret": {"type": "string", "description": "client_secret_post only."},
        "client_assertion_type": {"type": "string", "enum": [oauth.ASSERTION_TYPE]},
        "client_assertion": {"type": "string", "description": "private_key_jwt (RFC 7523)."},
    },
}
REVOKE_FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["token", "client_id"],
    "properties": {
        "token": {"type": "string", "description": "The refresh token to revoke."},
        "token_type_hint": {"type": "string", "enum": ["refresh_token", "access_token"]},
        "client_id": {"type": "string", "examples": ["refex-web"]},
    },
}
OAUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    429: problem_responses(429)[429],
    400: {
        "description": "invalid_request, invalid_grant, unsupported_grant_type, invalid_scope, "
        "unauthorized_client",
        "model": OAuthErrorBody,
    },
    401: {"description": "invalid_client", "model": OAuthErrorBody},
}


def _oauth_error(error: OAuthError) -> JSONResponse:
    headers = dict(NO_STORE)
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="refex"'
    body = {"error": error.error, "error_description": localize(error.description)}
    return JSONResponse(body, status_code=error.status, headers=headers)


def _retry_after(wait: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(wait)))}


async def _limit_by_address(request: Request) -> None:
    """Count every token request against its source address, before any secret is checked."""
    settings: GatewaySettings = request.app.state.settings
    address = request_address(request, settings.trusted_proxy_count)
    wait = await request.app.state.token_address_limiter.take(address)
    if wait > 0:
        raise TooManyRequests(
            N_(
                "Too many token requests from your network address. Reuse your token until it "
                "expires (expires_in); wait the seconds in Retry-After before asking again."
            ),
            headers=_retry_after(wait),
        )


async def _limit_by_client(request: Request, client_id: str) -> None:
    """Count tokens per authenticated client: failing in a client's name never reaches this."""
    wait = await request.app.state.token_limiter.take(client_id)
    if wait > 0:
        raise TooManyRequests(
            N_(
                "Too many token requests for this client. Reuse your token until it expires "
                "(expires_in), then ask again."
            ),
            headers=_retry_after(wait),
        )


@router.post(
    "/oauth/token",
    name="oauth.issueToken",
    tags=["oauth"],
    summary="Get an access token (client credentials, authorization code, refresh token)",
    response_model=TokenResponse,
    responses=OAUTH_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": TOKEN_FORM_SCHEMA}},
        }
    },
)
async def issue_token(request: Request, session: SessionDep) -> Response:
    """Exchange your client credentials (HTTP Basic, form secret, or a signed client assertion
    per RFC 7523) for a 5-minute ES256 access token carrying your organisation and roles.

    The workspace (public client `refex-web`, no secret) exchanges a sign-in's authorization
    code with its PKCE verifier (`grant_type=authorization_code`), then each refresh token
    once for the next pair (`grant_type=refresh_token`; a refresh token used twice ends that
    sign-in). Those tokens carry the person: `sub` = `user:<id>`, `person`, their
    organisation and roles.

    Requests are limited per source address first, then per authenticated client; over either
    limit the answer is 429 problem+json with Retry-After."""
    settings: GatewaySettings = request.app.state.settings
    await _limit_by_address(request)
    try:
        form = oauth.parse_form(request.headers.get("content-type", ""), await request.body())
        if form.get("grant_type") in PERSON_GRANTS:
            return await _person_tokens(request, session, form)
        auth = oauth.read_client_auth(form, request.headers.get("authorization"))
        oauth.check_grant_type(form)
        client = await oauth.authenticate(session=session, auth=auth, settings=settings)
        await _limit_by_client(request, client.client_id)
        roles = oauth.granted_roles(form.get("scope"), list(client.roles))
    except OAuthError as error:
        return _oauth_error(error)
    issued = oauth.issue_token(
        client=client, roles=roles, keys=request.app.state.keys, settings=settings
    )
    body = TokenResponse(
        access_token=issued.access_token, expires_in=issued.expires_in, scope=issued.scope
    )
    return JSONResponse(body.model_dump(exclude_none=True), headers=NO_STORE)


PERSON_GRANTS = frozenset({grants.AUTHORIZATION_CODE, grants.REFRESH_TOKEN})


async def _person_tokens(request: Request, session: SessionDep, form: dict[str, str]) -> Response:
    """Answer the workspace's code exchange or refresh (OAuth errors are answered, not raised,
    so that a used code or refresh token stays used)."""
    if request.headers.get("authorization"):
        raise InvalidRequest(N_("The workspace is a public client: send no Authorization header."))
    exchange = (
        grants.exchange_code if form["grant_type"] == grants.AUTHORIZATION_CODE else grants.refresh
    )
    tokens = await exchange(
        session=session, form=form, keys=request.app.state.keys, settings=request.app.state.settings
    )
    body = TokenResponse(
        access_token=tokens.access.access_token,
        expires_in=tokens.access.expires_in,
        refresh_token=tokens.refresh_token,
        scope=tokens.access.scope,
    )
    return JSONResponse(body.model_dump(), headers=NO_STORE)


@router.post(
    "/oauth/revoke",
    name="oauth.revokeToken",
    tags=["oauth"],
    summary="Revoke a refresh token (RFC 7009): sign out",
    responses={
        200: {"description": "Revoked, or not a refresh token of this client (nothing to do)"},
        **OAUTH_ERRORS,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": REVOKE_FORM_SCHEMA}},
        }
    },
)
async def revoke_token(request: Request, session: SessionDep) -> Response:
    """End the sign-in a refresh token belongs to: it and every refresh token rotated from the
    same sign-in stop working. Access tokens cannot be revoked; they expire within 5 minutes.
    An unknown or already revoked token is answered 200 as well (RFC 7009 §2.2)."""
    await _limit_by_address(request)
    try:
        form = oauth.parse_form(request.headers.get("content-type", ""), await request.body())
        await grants.revoke(session=session, form=form, settings=request.app.state.settings)
    except OAuthError as error:
        return _oauth_error(error)
    return Response(status_code=200, headers=NO_STORE)


async def _probe(check: Any) -> str:
    try:
        await check()
    except Exception:
        return "unreachable"
    return "ok"


@router.get(
    "/readyz/upstreams",
    name="operations.upstreamReadiness",
    tags=["operations"],
    summary="Do the services behind the gateway answer?",
    response_model=UpstreamHealth,
    responses={
        503: {"description": "A service (or Redis) is unreachable", "model": UpstreamHealth}
    },
)
async def upstream_readiness(request: Request) -> Response:
    """Probe each service behind the gateway (and Redis when configured); 503 names what is
    down. Unlike `/readyz`, which covers only the gateway's own database and signing keys (so
    one service down never takes the token endpoint out of the load balancer), this is for
    monitoring. A service that answers again is added to the merged `/openapi.json` at once."""
    checks: dict[str, Any] = request.app.state.upstream_checks
    results = await asyncio.gather(*(_probe(check) for check in checks.values()))
    states = dict(zip(checks, results, strict=True))
    catalog: OpenApiCatalog = request.app.state.openapi
    if any(states.get(name) == "ok" for name in catalog.missing):
        await catalog.refresh_missing()
    ready = all(state == "ok" for state in states.values())
    body = UpstreamHealth(
        status="ok" if ready else "unavailable", checks=states, openapi_missing=catalog.missing
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get(
    "/.well-known/jwks.json",
    name="oauth.getJwks",
    tags=["oauth"],
    summary="Public keys that verify access tokens",
    response_model=Jwks,
)
async def jwks(request: Request) -> Response:
    """The current token-signing key and, during a rotation, the previous ones."""
    keys: KeyRing = request.app.state.keys
    return JSONResponse(keys.public_jwks(), headers={"Cache-Control": "public, max-age=60"})


@router.post(
    "/admin/clients",
    name="admin.clients.create",
    tags=["admin"],
    status_code=201,
    summary="Register an API client",
    responses=problem_responses(400, 409, 422),
)
async def create_client(
    client_in: ClientCreate, request: Request, session: SessionDep, _admin: AdminPrincipal
) -> ClientCredentials:
    """Register a partner system; the response shows its secret once (store it now)."""
    pepper = request.app.state.settings.secret_pepper()
    client, secret = await registry.create_client(
        session=session, client_in=client_in, pepper=pepper
    )
    return ClientCredentials(client=client_read(client), client_secret=secret)


@router.get(
    "/admin/clients",
    name="admin.clients.list",
    tags=["admin"],
    summary="List API clients",
    responses=problem_responses(400, 422),
)
async def list_clients(
    session: SessionDep,
    _admin: AdminPrincipal,
    paging: Annotated[PageParams, Depends(page_params)],
    org_id: Annotated[uuid.UUID | None, Query(description="Only this organisation's.")] = None,
) -> ClientPage:
    """List registered clients by id, optionally for one organisation (never their secrets)."""
    after = str(decode_cursor(paging.cursor)[0]) if paging.cursor else None
    rows, next_id = await registry.list_clients(
        session=session, org_id=org_id, after=after, limit=paging.limit
    )
    return ClientPage(
        items=[client_read(row) for row in rows],
        next_cursor=encode_cursor([next_id]) if next_id else None,
    )


@router.get(
    "/admin/clients/{client_id}",
    name="admin.clients.get",
    tags=["admin"],
    summary="Read an API client",
    responses=problem_responses(404),
)
async def get_client(client_id: str, session: SessionDep, _admin: AdminPrincipal) -> ClientRead:
    """Show one client's organisation, roles, status and registered key ids."""
    return client_read(await registry.get_client(session=session, client_id=client_id))


@router.post(
    "/admin/clients/{client_id}/disable",
    name="admin.clients.disable",
    tags=["admin"],
    summary="Disable an API client",
    responses=problem_responses(404),
)
async def disable_client(client_id: str, session: SessionDep, _admin: AdminPrincipal) -> ClientRead:
    """Stop issuing tokens to this client; tokens already issued expire within 5 minutes."""
    client = await registry.set_enabled(session=session, client_id=client_id, enabled=False)
    return client_read(client)


@router.post(
    "/admin/clients/{client_id}/enable",
    name="admin.clients.enable",
    tags=["admin"],
    summary="Re-enable an API client",
    responses=problem_responses(404),
)
async def enable_client(client_id: str, session: SessionDep, _admin: AdminPrincipal) -> ClientRead:
    """Let a disabled client obtain tokens again."""
    client = await registry.set_enabled(session=session, client_id=client_id, enabled=True)
    return client_read(client)


@router.post(
    "/admin/clients/{client_id}/secret",
    name="admin.clients.rotateSecret",
    tags=["admin"],
    summary="Rotate an API client's secret",
    responses=problem_responses(404),
)
async def rotate_secret(
    client_id: str, request: Request, session: SessionDep, _admin: AdminPrincipal
) -> ClientCredentials:
    """Issue a new secret (shown once); the old secret stops working immediately."""
    pepper = request.app.state.settings.secret_pepper()
    client, secret = await registry.rotate_secret(
        session=session, client_id=client_id, pepper=pepper
    )
    return ClientCredentials(client=client_read(client), client_secret=secret)


@router.put(
    "/admin/clients/{client_id}/jwks",
    name="admin.clients.setJwks",
    tags=["admin"],
    summary="Register a client's public keys (private_key_jwt)",
    responses=problem_responses(400, 404, 422),
)
async def set_client_jwks(
    client_id: str, jwks_in: Jwks, session: SessionDep, _admin: AdminPrincipal
) -> ClientRead:
    """Replace the public keys that verify this client's signed assertions (RFC 7523)."""
    client = await registry.set_jwks(
        session=session, client_id=client_id, jwks=jwks_in.model_dump()
    )
    return client_read(client)


@router.get(
    "/admin/signing-keys",
    name="admin.signingKeys.list",
    tags=["admin"],
    summary="List the published token-signing keys",
)
async def list_signing_keys(
    request: Request, session: SessionDep, _admin: AdminPrincipal
) -> list[SigningKeyRead]:
    """Show which keys are published, which one signs, and when rotated-out ones retire."""
    keys: KeyRing = request.app.state.keys
    published = {key["kid"] for key in keys.public_jwks()["keys"]}
    rows = await registry.published_signing_keys(session=session, published=published)
    return [signing_key_read(row, current=row.kid == keys.current_kid) for row in rows]


@router.post(
    "/admin/signing-keys/rotate",
    name="admin.signingKeys.rotate",
    tags=["admin"],
    summary="Rotate the token-signing key",
)
async def rotate_signing_key(
    request: Request, session: SessionDep, _admin: AdminPrincipal
) -> SigningKeyRead:
    """Sign new tokens with a fresh key; the previous one stays published for the overlap."""
    keys: KeyRing = request.app.state.keys
    kid = await keys.rotate()
    # The session connects only now, after the key ring committed the new key.
    row = await registry.get_signing_key(session=session, kid=kid)
    return signing_key_read(row, current=True)


@router.post(
    "/admin/openapi/refresh",
    name="admin.openapi.refresh",
    tags=["admin"],
    summary="Reload the services' API descriptions",
)
async def refresh_openapi(request: Request, _admin: AdminPrincipal) -> OpenApiStatus:
    """Fetch every service's OpenAPI now and rebuild the merged document at /openapi.json."""
    catalog: OpenApiCatalog = request.app.state.openapi
    await catalog.refresh()
    document = catalog.merged_document()
    operations = sum(
        1
        for item in document.get("paths", {}).values()
        for method in item
        if method != "parameters"
    )
    return OpenApiStatus(
        loaded=sorted(catalog.documents), missing=catalog.missing, operations=operations
    )
