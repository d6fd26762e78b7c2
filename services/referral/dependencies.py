"""Dependencies of the referral routes, as named types."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.referral.service import Clients, Context
from services.referral.settings import ReferralSettings
from shared.auth import Principal, require_roles
from shared.vocabulary import Role


def get_clients(request: Request) -> Clients:
    """The directory and consent clients built in the app's lifespan."""
    clients: Clients = request.app.state.clients
    return clients


def get_settings(request: Request) -> ReferralSettings:
    """This service's settings."""
    settings: ReferralSettings = request.app.state.settings
    return settings


def context_for(*roles: Role) -> object:
    """Build a dependency yielding the request context for callers holding one of `roles`."""

    # A default, not an Annotated closure reference: with postponed annotations FastAPI
    # could not resolve `roles` when generating the OpenAPI document.
    guard = Depends(require_roles(*roles))

    async def dependency(request: Request, principal: Principal = guard) -> Context:
        settings: ReferralSettings = request.app.state.settings
        return Context(
            principal=principal,
            request_id=getattr(request.state, "request_id", None),
            subject_key=settings.subject_hash_key.get_secret_value().encode(),
        )

    return Depends(dependency)


ClientsDep = Annotated[Clients, Depends(get_clients)]
SettingsDep = Annotated[ReferralSettings, Depends(get_settings)]
# Host offices send international referrals; providers and coordinating bodies in the country of
# origin send local and national ones, under agreements that name them as the sender.
SenderContext = Annotated[Context, context_for(Role.HOST_OFFICE, Role.PROVIDER, Role.COORDINATOR)]
HostOfficeContext = Annotated[Context, context_for(Role.HOST_OFFICE)]
RecipientContext = Annotated[Context, context_for(Role.PROVIDER, Role.COORDINATOR)]
PartyContext = Annotated[Context, context_for(Role.HOST_OFFICE, Role.PROVIDER, Role.COORDINATOR)]
ReaderContext = Annotated[
    Context, context_for(Role.HOST_OFFICE, Role.PROVIDER, Role.COORDINATOR, Role.AUDITOR)
]
CoordinatorContext = Annotated[Context, context_for(Role.COORDINATOR)]
InternalCallerContext = Annotated[Context, context_for(Role.INTERNAL_CALLER)]
AdminContext = Annotated[Context, context_for(Role.ADMIN)]
StatsContext = Annotated[
    Context,
    context_for(Role.AUDITOR, Role.ADMIN, Role.HOST_OFFICE, Role.PROVIDER, Role.COORDINATOR),
]
PlanReaderContext = Annotated[
    Context,
    context_for(Role.HOST_OFFICE, Role.PROVIDER, Role.COORDINATOR, Role.AUDITOR, Role.ADMIN),
]
