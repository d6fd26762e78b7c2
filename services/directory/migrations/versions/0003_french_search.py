"""French and English in search: stemmed per language on PostgreSQL, accents folded everywhere.

PostgreSQL: the `unaccent` extension and an IMMUTABLE wrapper `refex_unaccent(text)` (unaccent
itself is only STABLE, so it cannot appear in a generated column or an index). The generated
`search_vector` is rebuilt as the normalised `simple` words of every language (as before, so
SQLite and PostgreSQL still match the same services on exact words) plus the French names and
descriptions through the `french` configuration and the English ones through `english`, so
"formations" finds "formation" and "trainings" finds "training". Name words keep weight A,
description words B. SQLite: FTS5 already folds diacritics (`unicode61 remove_diacritics 2`)
and the texts are stored folded; nothing changes there.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIMPLE_VECTOR = (
    "setweight(to_tsvector('simple', search_name), 'A') || "
    "setweight(to_tsvector('simple', search_body), 'B')"
)


def _language_vector(config: str, language: str) -> str:
    name = f"refex_unaccent(coalesce(name ->> '{language}', ''))"
    body = f"refex_unaccent(coalesce(description ->> '{language}', ''))"
    return (
        f"setweight(to_tsvector('{config}', {name}), 'A') || "
        f"setweight(to_tsvector('{config}', {body}), 'B')"
    )


MULTILINGUAL_VECTOR = " || ".join(
    (SIMPLE_VECTOR, _language_vector("french", "fr"), _language_vector("english", "en"))
)


def _unaccent_schema() -> str:
    row = op.get_bind().exec_driver_sql(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'unaccent'"
    )
    return str(row.scalar_one())


def _rebuild_vector(expression: str) -> None:
    op.execute("DROP INDEX IF EXISTS ix_service_search_vector")
    op.execute("ALTER TABLE service DROP COLUMN IF EXISTS search_vector")
    op.execute(
        f"ALTER TABLE service ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ({expression}) "
        "STORED"
    )
    op.execute("CREATE INDEX ix_service_search_vector ON service USING gin (search_vector)")


def upgrade() -> None:
    """Create the unaccent wrapper and rebuild the search vector per language (PostgreSQL)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    schema = _unaccent_schema()
    # Schema-qualified dictionary and function: a generated column must not depend on search_path.
    op.execute(
        "CREATE OR REPLACE FUNCTION refex_unaccent(text) RETURNS text "
        "LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS "
        f"$$ SELECT {schema}.unaccent('{schema}.unaccent'::regdictionary, $1) $$"
    )
    _rebuild_vector(MULTILINGUAL_VECTOR)


def downgrade() -> None:
    """Return to the single `simple` vector of revision 0001."""
    if op.get_bind().dialect.name != "postgresql":
        return
    _rebuild_vector(SIMPLE_VECTOR)
    op.execute("DROP FUNCTION IF EXISTS refex_unaccent(text)")
