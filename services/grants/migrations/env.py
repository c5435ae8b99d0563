"""Alembic environment of the grants service's own database."""

from services.grants.models import Base
from shared.migrate import run_alembic_env

run_alembic_env(Base.metadata)
