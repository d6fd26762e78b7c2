"""Alembic environment of the referral service."""

from services.referral.models import Base
from services.referral.settings import ReferralSettings
from shared.migrations import run_migrations

run_migrations(Base.metadata, ReferralSettings().database_url)
