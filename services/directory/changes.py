"""The directory's change records: one audit row per change, which also feeds the change feed."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.directory.models import ChangeRecord
from services.directory.service import acting_role
from shared.auth import Principal
from shared.clock import utcnow
from shared.ids import new_id


def record_change(
    session: AsyncSession,
    *,
    principal: Principal,
    request_id: str | None,
    action: str,
    object_type: str,
    object_id: uuid.UUID,
    organisation_id: uuid.UUID,
    country: str,
    details: dict[str, Any] | None = None,
) -> ChangeRecord:
    """Add the audit row of a change to the caller's transaction (ids and codes only)."""
    row = ChangeRecord(
        id=new_id(),
        action=action,
        object_type=object_type,
        object_id=object_id,
        organisation_id=organisation_id,
        country=country,
        actor_client_id=principal.client_id,
        actor_org_id=principal.org_id,
        actor_role=acting_role(principal, organisation_id),
        request_id=request_id,
        details=details or {},
        occurred_at=utcnow(),
    )
    session.add(row)
    return row
