"""Cursor pagination: `?limit=&cursor=` in, `{items, next_cursor}` out."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Query
from pydantic import BaseModel, Field

from shared.errors import BadRequest

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of results and the cursor of the next one (null on the last page)."""

    items: list[T]
    next_cursor: str | None = Field(None, examples=["eyJrIjpbIjIwMjYtMTEtMjUiXX0"])


class PageParams(BaseModel):
    """The paging part of a list request."""

    limit: int
    cursor: str | None


def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=512, description="`next_cursor` of the previous page.")
    ] = None,
) -> PageParams:
    """Read `limit` and `cursor` from the query."""
    return PageParams(limit=limit, cursor=cursor)


def encode_cursor(key: list[Any]) -> str:
    """Encode the sort key of the last item as an opaque cursor."""
    return base64.urlsafe_b64encode(orjson.dumps(key, default=str)).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    """Decode a cursor made by `encode_cursor`; a broken one is a 400 the caller can fix."""
    try:
        key = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        key = None
    if not isinstance(key, list):
        raise BadRequest("The cursor is not one we issued; start again without 'cursor'.")
    return key


def time_id_cursor(at: datetime, item_id: uuid.UUID) -> str:
    """Encode a (timestamp, id) sort key, the usual order of our lists."""
    return encode_cursor([at.isoformat(), str(item_id)])


def decode_time_id_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """Decode a cursor made by `time_id_cursor` (None when there is none)."""
    if cursor is None:
        return None
    key = decode_cursor(cursor)
    try:
        return datetime.fromisoformat(key[0]), uuid.UUID(key[1])
    except (IndexError, TypeError, ValueError):
        raise BadRequest("The cursor is not one we issued; start again without 'cursor'.") from None
