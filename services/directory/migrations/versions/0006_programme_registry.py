"""A programme registry; each agreement's free-text programme becomes a registered programme.

- programme: code (unique slug), names by language, donor, host and origin countries (ISO
  3166-1 alpha-2), period.
- agreement.programme now holds a programme code. Every distinct free text already stored is
  registered as a programme whose code is the text made into a slug, whose English name is the
  text, whose period starts with its earliest agreement and is open-ended; donor and countries
  were never recorded, so they stay empty (and unchecked) until an admin completes them.

Revision ID: 0006_programme_registry
Revises: 0005_partnership_tools
Create Date: 2026-12-05
"""

import json
import re
import unicodedata
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from shared.db import JSONType, UTCDateTime

revision: str = "0006_programme_registry"
down_revision: str | None = "0005_partnership_tools"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Stable ids for migrated programmes: the same text gets the same id on every database.
NAMESPACE = uuid.UUID("0192f000-0000-7000-8000-00000000f004")


def slug(text: str) -> str:
    """Return the programme code this revision gives a free-text programme."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return re.sub(r"[^a-z0-9]+", "-", plain).strip("-")[:64] or "programme"


def _create_table() -> None:
    op.create_table(
        "programme",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("code", sa.String(64), nullable=False, unique=True),
        sa.Column("name", JSONType, nullable=False),
        sa.Column("donor", sa.String(200)),
        sa.Column("host_countries", JSONType, nullable=False),
        sa.Column("origin_countries", JSONType, nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime()),
        sa.Column("row_version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_agreement_programme", "agreement", ["programme"])


def _migrate_free_text(connection: sa.Connection) -> None:
    agreement = sa.table(
        "agreement", sa.column("programme", sa.String), sa.column("valid_from", UTCDateTime())
    )
    earliest = connection.execute(
        sa.select(agreement.c.programme, sa.func.min(agreement.c.valid_from))
        .where(agreement.c.programme.is_not(None))
        .group_by(agreement.c.programme)
    ).all()
    programme = sa.table(
        "programme",
        sa.column("id", sa.Uuid()),
        sa.column("code", sa.String),
        sa.column("donor", sa.String),
        sa.column("row_version", sa.Integer),
        *(sa.column(name, JSONType) for name in ("name", "host_countries", "origin_countries")),
        sa.column("starts_at", UTCDateTime()),
        sa.column("created_at", UTCDateTime()),
        sa.column("updated_at", UTCDateTime()),
    )
    now = datetime.now(UTC)
    codes: dict[str, str] = {}
    for text, starts_at in earliest:
        code = slug(text)
        if code not in codes.values():
            connection.execute(
                programme.insert().values(
                    id=uuid.uuid5(NAMESPACE, code),
                    code=code,
                    name={"en": text[:200]},
                    donor=None,
                    host_countries=[],
                    origin_countries=[],
                    starts_at=starts_at,
                    row_version=1,
                    created_at=now,
                    updated_at=now,
                )
            )
        codes[text] = code
    for text, code in codes.items():
        connection.execute(
            agreement.update().where(agreement.c.programme == text).values(programme=code)
        )


def upgrade() -> None:
    """Create the registry and register every programme agreements already name."""
    _create_table()
    _migrate_free_text(op.get_bind())


def downgrade() -> None:
    """Put the programmes' English names back into the agreements and drop the registry."""
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT code, name FROM programme")).all()
    for code, name in rows:
        names = name if isinstance(name, dict) else json.loads(name)
        connection.execute(
            sa.text("UPDATE agreement SET programme = :text WHERE programme = :code"),
            {"text": names.get("en", code), "code": code},
        )
    op.drop_index("ix_agreement_programme", "agreement")
    op.drop_table("programme")
