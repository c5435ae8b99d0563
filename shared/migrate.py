"""Alembic, run per service against that service's own database."""

from __future__ import annotations

from importlib import resources

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, create_engine, pool

from shared.config import sqlalchemy_url


def alembic_config(service: str, database_url: str) -> Config:
    """An Alembic config pointing at `services/<service>/migrations`."""
    config = Config()
    location = resources.files(f"services.{service}") / "migrations"
    config.set_main_option("script_location", str(location))
    # configparser treats % as interpolation; URL-encoded passwords contain it.
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    return config


def upgrade(service: str, database_url: str, revision: str = "head") -> None:
    """Bring a service's database to `revision`."""
    command.upgrade(alembic_config(service, database_url), revision)


def run_alembic_env(metadata: MetaData) -> None:
    """The body of every service's migrations/env.py."""
    url = context.config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
