"""Row helpers every directory rule uses: ETags, If-Match, fresh ids, refused nulls."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.directory import repository
from services.directory.errors import DuplicateId
from services.directory.models import Base
from shared.errors import PreconditionFailed, ValidationFailed
from shared.i18n import Message
from shared.ids import new_id


def etag(row: Any) -> str:
    """Return the ETag of a versioned row."""
    return f'"{row.row_version}"'


def check_if_match(row: Any, if_match: str | None) -> None:
    """Refuse the change when the caller's If-Match names an older version."""
    if if_match is None:
        return
    candidates = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if "*" not in candidates and etag(row) not in candidates:
        raise PreconditionFailed


async def unused_id(
    session: AsyncSession, model: type[Base], row_id: uuid.UUID | None
) -> uuid.UUID:
    """Return `row_id` when no row of `model` has it (a fresh id when None), else 409."""
    if row_id is None:
        return new_id()
    if await repository.get(session, model, row_id) is not None:
        raise DuplicateId
    return row_id


def refuse_nulls(row: Any, changes: dict[str, Any]) -> None:
    """A required field sent as null is a 422 saying so, not a database error."""
    columns = row.__table__.columns
    for key, value in changes.items():
        if value is None and key in columns and not columns[key].nullable:
            raise ValidationFailed(
                Message(
                    "'{key}' cannot be null. Leave it out to keep the current value, or "
                    "send a new one.",
                    key=key,
                ),
                errors=[
                    {"loc": ["body", key], "msg": "may not be null", "type": "null_not_allowed"}
                ],
            )
