"""Initial schema of the directory service: organisations, keys, services, focal points, SOPs.

Search support differs per backend and is created here by hand: on SQLite an FTS5 table kept in
step by triggers; on PostgreSQL a generated tsvector column with a GIN index, and a GiST index on
`ll_to_earth(latitude, longitude)` (extensions cube + earthdistance) for nearest-first radius search.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import JSONType, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _versioned() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("row_version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    ]


def _org_fk(
    table: str, name: str, *, nullable: bool = False, ondelete: str = "CASCADE"
) -> sa.Column:  # type: ignore[type-arg]
    foreign_key = sa.ForeignKey(
        "organisation.id", ondelete=ondelete, name=f"fk_{table}_{name}_organisation"
    )
    return sa.Column(name, sa.Uuid(), foreign_key, nullable=nullable)


def upgrade() -> None:
    """Create the tables, then the backend's search structures."""
    op.create_table(
        "organisation",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", JSONType, nullable=False),
        sa.Column("description", JSONType, nullable=False),
        sa.Column("stakeholder_type", sa.String(40), nullable=False),
        sa.Column("engagement_level", sa.String(40), nullable=False),
        sa.Column("host_office", sa.Boolean(), nullable=False),
        sa.Column("country", sa.String(2), nullable=False, index=True),
        sa.Column("admin_areas", JSONType, nullable=False),
        sa.Column("languages", JSONType, nullable=False),
        sa.Column("website", sa.String(500)),
        sa.Column("email", sa.String(320)),
        sa.Column("webhook_url", sa.String(500)),
        sa.Column("coordination", JSONType),
        _org_fk("organisation", "coordinator_org_id", nullable=True, ondelete="SET NULL"),
        *_versioned(),
    )
    op.create_index("ix_organisation_coordinator_org_id", "organisation", ["coordinator_org_id"])
    op.create_table(
        "organisation_key",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _org_fk("organisation_key", "organisation_id"),
        sa.Column("kid", sa.String(200), nullable=False, unique=True),
        sa.Column("jwk", JSONType, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("valid_from", UTCDateTime(), nullable=False),
        sa.Column("valid_until", UTCDateTime()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_organisation_key_organisation_id", "organisation_key", ["organisation_id"])
    op.create_table(
        "service",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _org_fk("service", "organisation_id"),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("name", JSONType, nullable=False),
        sa.Column("description", JSONType, nullable=False),
        sa.Column("eligibility", sa.Text()),
        sa.Column("fees", sa.Text()),
        sa.Column("languages", JSONType, nullable=False),
        sa.Column("capacity", sa.Integer()),
        sa.Column("accepting_referrals", sa.Boolean(), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("admin_areas", JSONType, nullable=False),
        sa.Column("location", JSONType),
        sa.Column("latitude", sa.Float()),
        sa.Column("longitude", sa.Float()),
        sa.Column("search_name", sa.Text(), nullable=False),
        sa.Column("search_body", sa.Text(), nullable=False),
        sa.Column("languages_key", sa.String(400), nullable=False),
        sa.Column("areas_key", sa.String(2000), nullable=False),
        *_versioned(),
    )
    op.create_index("ix_service_organisation_id", "service", ["organisation_id"])
    op.create_index("ix_service_category", "service", ["category"])
    op.create_index("ix_service_country_category", "service", ["country", "category", "id"])
    op.create_index("ix_service_latitude_longitude", "service", ["latitude", "longitude"])
    op.create_table(
        "focal_point",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _org_fk("focal_point", "organisation_id"),
        sa.Column(
            "service_id",
            sa.Uuid(),
            sa.ForeignKey(
                "service.id", ondelete="CASCADE", name="fk_focal_point_service_id_service"
            ),
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(200)),
        sa.Column("contact_channels", JSONType, nullable=False),
        sa.Column("schedule", JSONType, nullable=False),
        sa.Column("response_time_hours", sa.Integer(), nullable=False),
        sa.Column(
            "backup_focal_point_id",
            sa.Uuid(),
            sa.ForeignKey(
                "focal_point.id",
                ondelete="SET NULL",
                name="fk_focal_point_backup_focal_point_id_focal_point",
            ),
        ),
        sa.Column("first_contact_categories", JSONType, nullable=False),
        *_versioned(),
    )
    op.create_index("ix_focal_point_organisation_id", "focal_point", ["organisation_id"])
    op.create_index("ix_focal_point_service_id", "focal_point", ["service_id"])
    op.create_table(
        "agreement",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("series_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _org_fk("agreement", "sender_org_id", nullable=True),
        _org_fk("agreement", "provider_org_id"),
        sa.Column("service_categories", JSONType, nullable=False),
        sa.Column("permitted_categories", JSONType, nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("emergency_override_allowed", sa.Boolean(), nullable=False),
        sa.Column("valid_from", UTCDateTime(), nullable=False),
        sa.Column("valid_until", UTCDateTime()),
        sa.Column("programme", sa.String(200)),
        sa.Column("document_sha256", sa.String(64)),
        *_versioned(),
    )
    op.create_index("ix_agreement_series_id", "agreement", ["series_id"])
    op.create_index("ix_agreement_provider_org_id", "agreement", ["provider_org_id"])
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_search()
    else:
        _sqlite_search()


def _postgresql_search() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS cube")
    op.execute("CREATE EXTENSION IF NOT EXISTS earthdistance")
    op.execute(
        "ALTER TABLE service ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
        "setweight(to_tsvector('simple', search_name), 'A') || "
        "setweight(to_tsvector('simple', search_body), 'B')) STORED"
    )
    op.execute("CREATE INDEX ix_service_search_vector ON service USING gin (search_vector)")
    op.execute(
        "CREATE INDEX ix_service_earth ON service USING gist (ll_to_earth(latitude, longitude)) "
        "WHERE latitude IS NOT NULL"
    )


def _sqlite_search() -> None:
    op.execute(
        "CREATE VIRTUAL TABLE service_fts USING fts5("
        "search_name, search_body, service_id UNINDEXED, tokenize='unicode61 remove_diacritics 2')"
    )
    # The FTS rowid of each service, so updates and deletes find their row without a scan.
    op.execute(
        "CREATE TABLE service_fts_key (service_id CHAR(32) PRIMARY KEY, fts_rowid INTEGER NOT NULL)"
    )
    op.execute(
        "CREATE TRIGGER service_fts_insert AFTER INSERT ON service BEGIN "
        "INSERT INTO service_fts(search_name, search_body, service_id) "
        "VALUES (new.search_name, new.search_body, new.id); "
        "INSERT INTO service_fts_key(service_id, fts_rowid) VALUES (new.id, last_insert_rowid()); END"
    )
    op.execute(
        "CREATE TRIGGER service_fts_update AFTER UPDATE OF search_name, search_body ON service BEGIN "
        "UPDATE service_fts SET search_name = new.search_name, search_body = new.search_body "
        "WHERE rowid = (SELECT fts_rowid FROM service_fts_key WHERE service_id = old.id); END"
    )
    op.execute(
        "CREATE TRIGGER service_fts_delete AFTER DELETE ON service BEGIN "
        "DELETE FROM service_fts WHERE rowid = (SELECT fts_rowid FROM service_fts_key WHERE service_id = old.id); "
        "DELETE FROM service_fts_key WHERE service_id = old.id; END"
    )


def downgrade() -> None:
    """Drop everything this revision created."""
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("service_fts_insert", "service_fts_update", "service_fts_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS service_fts_key")
        op.execute("DROP TABLE IF EXISTS service_fts")
    for table in ("agreement", "focal_point", "service", "organisation_key", "organisation"):
        op.drop_table(table)
