"""Cursors of the partnership lists: the id of the last item, newest first or by id."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from shared.errors import BadRequest
from shared.i18n import Message
from shared.pagination import PageParams, decode_cursor, encode_cursor

Row = TypeVar("Row")
PageT = TypeVar("PageT", bound=BaseModel)


def cursor_id(paging: PageParams) -> uuid.UUID | None:
    """Return the id a cursor carries, or None on the first page."""
    if paging.cursor is None:
        return None
    key = decode_cursor(paging.cursor)
    try:
        return uuid.UUID(str(key[0]))
    except ValueError:
        raise BadRequest(
            Message("The cursor is not one we issued; start again without 'cursor'.")
        ) from None


def next_cursor(rows: list[Any], paging: PageParams) -> str | None:
    """Return the cursor after the last row of a full page (None on the last page)."""
    return encode_cursor([str(rows[-1].id)]) if rows and len(rows) == paging.limit else None


def page_of(
    page: type[PageT], rows: Sequence[Row], paging: PageParams, shape: Callable[[Row], Any]
) -> PageT:
    """One page of a list: each row shaped for the answer, and the cursor after it."""
    return page(items=[shape(row) for row in rows], next_cursor=next_cursor(list(rows), paging))
