"""Alembic environment of the registry service's own database."""

from services.registry.models import Base
from shared.migrate import run_alembic_env

run_alembic_env(Base.metadata)
