"""Named dependencies of the directory routes: who may call what."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.directory.service import SELF_SERVICE_ROLES
from shared.auth import Principal, require_roles
from shared.vocabulary import Role

# Every role reads the directory: it is how partners find each other.
READ_ROLES = (
    Role.ADMIN,
    Role.HOST_OFFICE,
    Role.PROVIDER,
    Role.COORDINATOR,
    Role.MENTAL_HEALTH_PROFESSIONAL,
    Role.AUDITOR,
    Role.INTERNAL_CALLER,
)

Reader = Annotated[Principal, Depends(require_roles(*READ_ROLES))]
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
SelfService = Annotated[Principal, Depends(require_roles(Role.ADMIN, *SELF_SERVICE_ROLES))]
Resolver = Annotated[
    Principal,
    Depends(require_roles(Role.INTERNAL_CALLER, Role.HOST_OFFICE, Role.ADMIN, Role.AUDITOR)),
]


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


# The id the audit rows of this request carry (set by the shared middleware).
RequestId = Annotated[str | None, Depends(_request_id)]
