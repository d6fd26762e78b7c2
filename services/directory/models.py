"""Tables of the directory service (SQLAlchemy 2.0)."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from shared.db import service_metadata


class Base(DeclarativeBase):
    """Declarative base of the directory service's own database."""

    metadata = service_metadata()
