"""Partnership tools: situation reports, service intake, engagement history, capacity, jobs.

- change_record: the directory's audit row for these records, and the source of its feed.
- situation_report: versioned, dated reports of origin-country partners on an area.
- service_intake: a provider's current word on a service (closed, waiting days, places left).
- engagement_change: every change of an organisation's engagement level, why and by whom.
  Existing organisations get one row (from null to their current level) so the history
  starts from what is known.
- partner_contact, capacity_plan: the contact log and capacity-building records.
- opportunity: jobs, apprenticeships and courses with ISCO-08 skill codes.

Revision ID: 0005_partnership_tools
Revises: 0004_agreement_sealed_required
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import JSONType, UTCDateTime

revision: str = "0005_partnership_tools"
down_revision: str | None = "0004_agreement_sealed_required"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(table: str, column: str, target: str, ondelete: str = "CASCADE") -> sa.Column[sa.Uuid]:
    return sa.Column(
        column,
        sa.Uuid(),
        sa.ForeignKey(f"{target}.id", ondelete=ondelete, name=f"fk_{table}_{column}_{target}"),
        nullable=ondelete != "CASCADE",
    )


def _versioned() -> list[sa.Column[object]]:
    return [
        sa.Column("row_version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    ]


def _create_change_record() -> None:
    op.create_table(
        "change_record",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("object_type", sa.String(40), nullable=False),
        sa.Column("object_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("organisation_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("actor_client_id", sa.String(200), nullable=False),
        sa.Column("actor_org_id", sa.String(64), nullable=False),
        sa.Column("actor_role", sa.String(40), nullable=False),
        sa.Column("request_id", sa.String(64)),
        sa.Column("details", JSONType, nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_change_record_country_id", "change_record", ["country", "id"])


def _create_situation_tables() -> None:
    op.create_table(
        "situation_report",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("series_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("version", sa.Integer(), nullable=False),
        _fk("situation_report", "organisation_id", "organisation"),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("admin_area", sa.String(10)),
        sa.Column("topics", JSONType, nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("valid_from", UTCDateTime(), nullable=False),
        sa.Column("valid_until", UTCDateTime()),
        sa.Column("published_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_situation_report_organisation_id", "situation_report", ["organisation_id"])
    op.create_index("ix_situation_report_country_id", "situation_report", ["country", "id"])
    op.create_table(
        "service_intake",
        sa.Column(
            "service_id",
            sa.Uuid(),
            sa.ForeignKey(
                "service.id", ondelete="CASCADE", name="fk_service_intake_service_id_service"
            ),
            primary_key=True,
        ),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("waiting_days", sa.Integer()),
        sa.Column("places_left", sa.Integer()),
        sa.Column("reopens_on", sa.Date()),
        sa.Column("note", JSONType, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def _create_engagement_tables() -> None:
    op.create_table(
        "engagement_change",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _fk("engagement_change", "organisation_id", "organisation"),
        sa.Column("from_level", sa.String(40)),
        sa.Column("to_level", sa.String(40), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("planned_activities", JSONType, nullable=False),
        sa.Column("actor_client_id", sa.String(200), nullable=False),
        sa.Column("actor_org_id", sa.String(64), nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_engagement_change_organisation_id", "engagement_change", ["organisation_id"]
    )
    op.create_table(
        "partner_contact",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _fk("partner_contact", "organisation_id", "organisation"),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        _fk("partner_contact", "counterpart_org_id", "organisation", ondelete="SET NULL"),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("decisions", JSONType, nullable=False),
        sa.Column("recorded_by_org_id", sa.String(64), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_partner_contact_organisation_id", "partner_contact", ["organisation_id"])
    op.create_table(
        "capacity_plan",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _fk("capacity_plan", "organisation_id", "organisation"),
        sa.Column("assessed_on", sa.Date(), nullable=False),
        sa.Column("areas", JSONType, nullable=False),
        sa.Column("gaps", JSONType, nullable=False),
        sa.Column("objectives", sa.Text(), nullable=False),
        sa.Column("activities", JSONType, nullable=False),
        sa.Column("indicators", JSONType, nullable=False),
        *_versioned(),
    )
    op.create_index("ix_capacity_plan_organisation_id", "capacity_plan", ["organisation_id"])


def _create_opportunity() -> None:
    op.create_table(
        "opportunity",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _fk("opportunity", "organisation_id", "organisation"),
        _fk("opportunity", "service_id", "service", ondelete="SET NULL"),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("title", JSONType, nullable=False),
        sa.Column("description", JSONType, nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("admin_area", sa.String(10)),
        sa.Column("latitude", sa.Float()),
        sa.Column("longitude", sa.Float()),
        sa.Column("starts_on", sa.Date()),
        sa.Column("ends_on", sa.Date()),
        sa.Column("places_left", sa.Integer(), nullable=False),
        sa.Column("languages", JSONType, nullable=False),
        sa.Column("skills", JSONType, nullable=False),
        *_versioned(),
    )
    op.create_index("ix_opportunity_organisation_id", "opportunity", ["organisation_id"])
    op.create_index("ix_opportunity_country_kind", "opportunity", ["country", "kind", "id"])


def _backfill_engagement() -> None:
    # Uuids from the organisation id keep the backfill one portable statement on both backends.
    op.execute(
        "INSERT INTO engagement_change (id, organisation_id, from_level, to_level, reason, "
        "planned_activities, actor_client_id, actor_org_id, changed_at) "
        "SELECT id, id, NULL, engagement_level, NULL, '[]', 'migration', 'refex', created_at "
        "FROM organisation"
    )


def upgrade() -> None:
    """Create the partnership tables and start each organisation's engagement history."""
    _create_change_record()
    _create_situation_tables()
    _create_engagement_tables()
    _create_opportunity()
    _backfill_engagement()


def downgrade() -> None:
    """Drop the partnership tables."""
    for table in (
        "opportunity",
        "capacity_plan",
        "partner_contact",
        "engagement_change",
        "service_intake",
        "situation_report",
        "change_record",
    ):
        op.drop_table(table)
