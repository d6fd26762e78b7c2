"""Cursor pagination: `?limit=&cursor=` in, `{items, next_cursor}` out."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Query
from pydantic import BaseModel, Field

from shared.errors import UnprocessableContent
from shared.i18n import N_

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


T = TypeVar("T")


class InvalidCursor(UnprocessableContent):
    """The `cursor` query parameter is not a cursor this list issued."""

    slug = "invalid-cursor"
    title = N_("Invalid cursor")
    detail = N_(
        "The 'cursor' parameter is not one this list issued. Pass the 'next_cursor' of the "
        "previous page unchanged, or start again without 'cursor'."
    )

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            detail,
            errors=[
                {
                    "loc": ["query", "cursor"],
                    "msg": "not a cursor this list issued",
                    "type": "invalid_cursor",
                }
            ],
        )


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
    """Decode a cursor made by `encode_cursor`; a broken one is an InvalidCursor (422)."""
    try:
        key = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        key = None
    if not isinstance(key, list) or not key:  # we never issue an empty key
        raise InvalidCursor
    return key


def time_id_cursor(at: datetime, item_id: uuid.UUID) -> str:
    """Encode a (timestamp, id) sort key, the usual order of our lists."""
    return encode_cursor([at.isoformat(), str(item_id)])


def next_time_id_cursor(
    rows: Sequence[T], limit: int, key: Callable[[T], tuple[datetime, uuid.UUID]]
) -> str | None:
    """The cursor after the page's last item, when one row more than `limit` was fetched."""
    if len(rows) <= limit:
        return None
    return time_id_cursor(*key(rows[limit - 1]))


def decode_time_id_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """Decode a cursor made by `time_id_cursor` (None when there is none)."""
    if cursor is None:
        return None
    key = decode_cursor(cursor)
    if len(key) != 2 or not all(isinstance(part, str) for part in key):
        raise InvalidCursor
    try:
        at, item_id = datetime.fromisoformat(key[0]), uuid.UUID(key[1])
        # Naive, or beyond datetime's range once in UTC: the database could not compare it.
        if at.tzinfo is not None:
            return at.astimezone(UTC), item_id
    except (ValueError, OverflowError):
        pass
    raise InvalidCursor
