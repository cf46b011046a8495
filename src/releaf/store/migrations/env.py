"""Alembic environment of releaf's store.

Run programmatically by ``releaf.store.db.upgrade`` (which passes an open connection in
``config.attributes["connection"]``) or from the command line::

    alembic -c src/releaf/store/alembic.ini upgrade head
    alembic -c src/releaf/store/alembic.ini revision --autogenerate -m "what changed"

The URL comes from ``sqlalchemy.url`` if set, else ``RELEAF_DATABASE_URL``, else ``sqlite:///releaf.db``.
"""

from __future__ import annotations

from logging.config import fileConfig

import sqlalchemy as sa
from alembic import context

from releaf.store.db import database_url, make_engine
from releaf.store.models import Base, UTCDateTime

config = context.config
if config.config_file_name is not None:  # command line only: never reconfigure an application's logging
    fileConfig(config.config_file_name, disable_existing_loggers=False)
target_metadata = Base.metadata


def _render_item(type_: str, obj, autogen_context):
    """Render ``UTCDateTime`` as plain ``sa.DateTime(timezone=True)``: migrations must not import models."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(dialect_name: str, **kwargs) -> None:
    context.configure(
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode rewrites the table instead.
        render_as_batch=dialect_name == "sqlite",
        compare_type=True,
        render_item=_render_item,
        **kwargs,
    )


def run_migrations_offline() -> None:
    """Emit the SQL instead of running it (``alembic upgrade head --sql``)."""
    url = sa.make_url(database_url(config.get_main_option("sqlalchemy.url")))
    _configure(url.get_backend_name(), url=url, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the connection given by the caller, or on a new one."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection.dialect.name, connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as connection:
            _configure(connection.dialect.name, connection=connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
