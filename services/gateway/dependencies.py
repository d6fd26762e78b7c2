"""Named dependencies of the gateway routes: who may call what."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from shared.auth import Principal, require_roles
from shared.vocabulary import Role

AdminPrincipal = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
