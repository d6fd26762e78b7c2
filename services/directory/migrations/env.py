"""Alembic environment of the directory service."""

from services.directory.models import Base
from services.directory.settings import DirectorySettings
from shared.migrations import run_migrations

run_migrations(Base.metadata, DirectorySettings().database_url)
