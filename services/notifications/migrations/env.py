"""Alembic environment of the notifications service's own database."""

from services.notifications.models import Base
from shared.migrate import run_alembic_env

run_alembic_env(Base.metadata)
