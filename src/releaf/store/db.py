"""Opening the database: URL resolution, engine, schema migration to head, one-transaction sessions."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

DATABASE_URL_ENV = "RELEAF_DATABASE_URL"
DEFAULT_DATABASE_URL = "sqlite:///releaf.db"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def database_url(url: str | None = None) -> str:
    """The database URL to use.

    Parameters
    ----------
    url : explicit SQLAlchemy URL; wins when given (and not empty)

    Returns
    -------
    ``url``, else the environment variable ``RELEAF_DATABASE_URL``, else ``sqlite:///releaf.db`` (a file in
    the current directory).
    """
    return url or os.environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL


def _enable_sqlite_foreign_keys(dbapi_connection, connection_record) -> None:
    # SQLite ignores FOREIGN KEY clauses unless asked, per connection.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str | None = None) -> sa.Engine:
    """An engine for ``database_url(url)``; SQLite connections get foreign keys enabled.

    An in-memory SQLite URL (``sqlite://``) shares one connection, otherwise every connection would see a new,
    empty database.
    """
    resolved = sa.make_url(database_url(url))
    kwargs = {}
    if resolved.get_backend_name() == "sqlite" and resolved.database in (None, "", ":memory:"):
        kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    engine = sa.create_engine(resolved, **kwargs)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _enable_sqlite_foreign_keys)
    return engine


def alembic_config(engine: sa.Engine | None = None) -> Config:
    """An Alembic configuration pointing at the migrations shipped inside the package (works from any cwd).

    Parameters
    ----------
    engine : when given, its URL is set as ``sqlalchemy.url`` (for commands run outside ``upgrade``)
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        # '%' is ConfigParser's interpolation character; URLs may contain it (escaped passwords).
        url = engine.url.render_as_string(hide_password=False).replace("%", "%%")
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Migrate the database behind ``engine`` to ``revision`` (default: the newest) in one transaction."""
    cfg = alembic_config(engine)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


@dataclass
class Store:
    """An open releaf database: the engine and a factory of one-transaction sessions."""

    engine: sa.Engine
    session_factory: sessionmaker[Session]

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back entirely on any exception.

        Objects stay readable after the block (``expire_on_commit=False``), detached from the session.
        """
        with self.session_factory() as session, session.begin():
            yield session

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()


def open_store(url: str | None = None) -> Store:
    """Open (and create or migrate to the newest schema) the releaf database.

    Parameters
    ----------
    url : SQLAlchemy URL; ``None`` → ``RELEAF_DATABASE_URL``, else ``sqlite:///releaf.db``

    Returns
    -------
    A ``Store`` whose ``transaction()`` yields a session.
    """
    engine = make_engine(url)
    upgrade(engine)
    return Store(engine=engine, session_factory=sessionmaker(engine, expire_on_commit=False))
