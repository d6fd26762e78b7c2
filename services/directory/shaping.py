"""Rows of the directory become response models here, and nowhere else."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from services.directory.models import Organisation, OrganisationEvent, OrganisationKey
from services.directory.schemas import Actor, KeyRead, OrganisationEventRead, OrganisationRead
from services.directory.service import sees_private_details
from shared.auth import Principal

ReadT = TypeVar("ReadT", bound=BaseModel)


def to_read(row: Any, read: type[ReadT]) -> ReadT:
    """Shape a row whose columns are the response model's fields."""
    return read.model_validate(row, from_attributes=True)


def organisation_read(principal: Principal, org: Organisation) -> OrganisationRead:
    """Return the organisation as this caller may see it: no webhook_url for other partners."""
    read = to_read(org, OrganisationRead)
    if not sees_private_details(principal, org.id):
        read.webhook_url = None
    return read


def key_read(key: OrganisationKey) -> KeyRead:
    """Shape a registered key with who added it."""
    added_by = None
    if key.added_by_client_id is not None:
        added_by = Actor(
            client_id=key.added_by_client_id,
            org_id=key.added_by_org_id or "",
            role=key.added_by_role or "",
        )
    values = {field: getattr(key, field) for field in KeyRead.model_fields if field != "added_by"}
    return KeyRead.model_validate({**values, "added_by": added_by})


def event_read(row: OrganisationEvent) -> OrganisationEventRead:
    """Shape an event of an organisation's keys with its actor."""
    actor = Actor(client_id=row.actor_client_id, org_id=row.actor_org_id, role=row.actor_role)
    return OrganisationEventRead.model_validate(
        {
            "id": row.id,
            "organisation_id": row.organisation_id,
            "type": row.type,
            "kid": row.kid,
            "thumbprint": row.thumbprint,
            "actor": actor,
            "by_admin": row.by_admin,
            "occurred_at": row.occurred_at,
        }
    )
