"""Alembic environment of the consent service."""

from services.consent.models import Base
from services.consent.settings import ConsentSettings
from shared.migrations import run_migrations

run_migrations(Base.metadata, ConsentSettings().database_url)
