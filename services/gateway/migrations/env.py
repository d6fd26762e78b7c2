"""Alembic environment of the gateway service."""

from services.gateway.models import Base
from services.gateway.settings import GatewaySettings
from shared.migrations import run_migrations

run_migrations(Base.metadata, GatewaySettings().database_url)
