"""HTTP routes of the people admin API: accounts, passwords, second factors, sign-out."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from services.gateway import users
from services.gateway.dependencies import AdminPrincipal
from services.gateway.schemas import (
    PasswordSet,
    SignOutResult,
    TotpEnrolment,
    UserCreate,
    UserCredentials,
    UserEventPage,
    UserInfo,
    UserPage,
    UserRead,
)
from services.gateway.shaping import user_event_read, user_info, user_read
from services.gateway.vault import PeopleVault
from shared.auth import AnyPrincipal, Principal
from shared.db import SessionDep
from shared.errors import problem_responses
from shared.pagination import InvalidCursor, PageParams, decode_cursor, encode_cursor, page_params

router = APIRouter(prefix="/admin/users", tags=["admin"])
me_router = APIRouter()
Paging = Annotated[PageParams, Depends(page_params)]


def _vault(request: Request) -> PeopleVault:
    vault: PeopleVault = request.app.state.vault
    return vault


def _actor(request: Request, principal: Principal) -> users.Actor:
    return users.Actor.of(principal, getattr(request.state, "request_id", None))


def _after(paging: PageParams) -> uuid.UUID | None:
    if not paging.cursor:
        return None
    try:
        return uuid.UUID(str(decode_cursor(paging.cursor)[0]))
    except ValueError:
        raise InvalidCursor() from None


@router.post(
    "",
    name="admin.users.create",
    status_code=201,
    summary="Create a person's account",
    responses=problem_responses(400, 409, 422),
)
async def create_user(
    user_in: UserCreate, request: Request, session: SessionDep, admin: AdminPrincipal
) -> UserCredentials:
    """Create an account that signs in at `/oauth/authorize` for the organisation, with the
    roles the person works in (any role but `service`). Without a password one is generated
    and shown only in this response."""
    user, password = await users.create_user(
        session=session, vault=_vault(request), user_in=user_in, actor=_actor(request, admin)
    )
    return UserCredentials(user=user_read(user, _vault(request)), password=password)


@router.get("", name="admin.users.list", summary="List accounts", responses=problem_responses(422))
async def list_users(
    request: Request,
    session: SessionDep,
    _admin: AdminPrincipal,
    paging: Paging,
    org_id: Annotated[uuid.UUID | None, Query(description="Only this organisation's.")] = None,
) -> UserPage:
    """List accounts by id, optionally of one organisation (never passwords or secrets)."""
    rows, next_id = await users.list_users(
        session=session, org_id=org_id, after=_after(paging), limit=paging.limit
    )
    return UserPage(
        items=[user_read(row, _vault(request)) for row in rows],
        next_cursor=encode_cursor([str(next_id)]) if next_id else None,
    )


@router.get(
    "/{user_id}",
    name="admin.users.get",
    summary="Read an account",
    responses=problem_responses(404),
)
async def get_user(
    user_id: uuid.UUID, request: Request, session: SessionDep, _admin: AdminPrincipal
) -> UserRead:
    """Show one account: organisation, roles, status, second factor and lockout."""
    return user_read(await users.get_user(session=session, user_id=user_id), _vault(request))


@router.post(
    "/{user_id}/disable",
    name="admin.users.disable",
    summary="Disable an account",
    responses=problem_responses(404),
)
async def disable_user(
    user_id: uuid.UUID, request: Request, session: SessionDep, admin: AdminPrincipal
) -> UserRead:
    """Refuse every sign-in of the account and end its sign-ins (refresh tokens stop at once;
    access tokens already issued expire within 5 minutes)."""
    user = await users.set_enabled(
        session=session, user_id=user_id, enabled=False, actor=_actor(request, admin)
    )
    return user_read(user, _vault(request))


@router.post(
    "/{user_id}/enable",
    name="admin.users.enable",
    summary="Re-enable an account",
    responses=problem_responses(404),
)
async def enable_user(
    user_id: uuid.UUID, request: Request, session: SessionDep, admin: AdminPrincipal
) -> UserRead:
    """Let the account sign in again; this also lifts a lockout."""
    user = await users.set_enabled(
        session=session, user_id=user_id, enabled=True, actor=_actor(request, admin)
    )
    return user_read(user, _vault(request))


@router.post(
    "/{user_id}/password",
    name="admin.users.setPassword",
    summary="Set an account's password",
    responses=problem_responses(404, 422),
)
async def set_password(
    user_id: uuid.UUID,
    password_in: PasswordSet,
    request: Request,
    session: SessionDep,
    admin: AdminPrincipal,
) -> UserRead:
    """Replace the password (at least 12 characters); lifts a lockout and ends the account's
    sign-ins everywhere."""
    user = await users.set_password(
        session=session,
        user_id=user_id,
        password=password_in.password,
        actor=_actor(request, admin),
    )
    return user_read(user, _vault(request))


@router.post(
    "/{user_id}/totp",
    name="admin.users.enrolTotp",
    summary="Enrol a second factor (TOTP)",
    responses=problem_responses(404),
)
async def enrol_totp(
    user_id: uuid.UUID, request: Request, session: SessionDep, admin: AdminPrincipal
) -> TotpEnrolment:
    """Give the account a new TOTP secret, replacing any earlier one, and return its
    `otpauth://` URI once: show it to the person as a QR code for their authenticator app.
    From now on the account signs in with password and code."""
    user, uri = await users.enrol_totp(
        session=session, vault=_vault(request), user_id=user_id, actor=_actor(request, admin)
    )
    return TotpEnrolment(user=user_read(user, _vault(request)), otpauth_uri=uri)


@router.post(
    "/{user_id}/sign-out",
    name="admin.users.signOut",
    summary="Sign an account out everywhere",
    responses=problem_responses(403, 404),
)
async def sign_out(
    user_id: uuid.UUID, request: Request, session: SessionDep, principal: AnyPrincipal
) -> SignOutResult:
    """End every sign-in of the account: all its refresh tokens stop working now; access
    tokens already issued expire within 5 minutes. Admins may sign anyone out; a person may
    sign themselves out everywhere with a token of theirs."""
    users.check_may_sign_out(principal, user_id)
    count = await users.sign_out(session=session, user_id=user_id, actor=_actor(request, principal))
    return SignOutResult(user_id=user_id, revoked_sessions=count)


@router.get(
    "/{user_id}/events",
    name="admin.users.events",
    summary="List what happened to an account",
    responses=problem_responses(404, 422),
)
async def list_events(
    user_id: uuid.UUID, session: SessionDep, _admin: AdminPrincipal, paging: Paging
) -> UserEventPage:
    """The account's audit trail, oldest first: created, signed in, locked, disabled,
    password set, second factor enrolled, signed out, refresh token reused; with who did it."""
    rows, next_id = await users.events(
        session=session, user_id=user_id, after=_after(paging), limit=paging.limit
    )
    return UserEventPage(
        items=[user_event_read(row) for row in rows],
        next_cursor=encode_cursor([str(next_id)]) if next_id else None,
    )


@me_router.get(
    "/oauth/userinfo",
    name="oauth.userInfo",
    tags=["oauth"],
    summary="Who is signed in (OpenID Connect UserInfo)",
    responses=problem_responses(403, 404),
)
async def userinfo(request: Request, session: SessionDep, principal: AnyPrincipal) -> UserInfo:
    """Return the account of the person the bearer token was issued to: name, e-mail,
    organisation, roles and whether a second factor is set, for the workspace to greet them.
    A partner system's own token is refused (403): it names no person."""
    user = await users.signed_in(session=session, principal=principal)
    return user_info(user, _vault(request))
