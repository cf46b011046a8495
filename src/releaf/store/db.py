"""Opening the database: URL resolution, engine, atomic schema migration, serialised write transactions.

Durability rests on the database's own means, not on lock files:

- **SQLite**: Python's ``sqlite3`` runs DDL (``CREATE TABLE``) outside any transaction unless told otherwise, so a
  kill between two ``CREATE TABLE`` left a half-made schema for good. releaf opens every transaction itself with
  ``BEGIN IMMEDIATE`` (the SQLAlchemy recipe for pysqlite): the schema is created or migrated in one transaction,
  and a writer takes the database's write lock when it starts, so two runs wait for each other (up to
  :data:`SQLITE_BUSY_TIMEOUT_S`) instead of failing. A kill leaves a hot journal that SQLite rolls back on the next
  open.
- **PostgreSQL**: DDL is transactional; migrations and run writes take a transaction-scoped advisory lock
  (``pg_advisory_xact_lock``), released by COMMIT, ROLLBACK or the death of the session.

A write that still fails on a busy database (SQLite's busy timeout, a PostgreSQL serialization failure or deadlock)
is retried by :func:`retrying`.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from releaf.errors import ConfigError
from releaf.store.checkpoints import checkpoint

DATABASE_URL_ENV = "RELEAF_DATABASE_URL"
DEFAULT_DATABASE_URL = "sqlite:///releaf.db"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 120.0
"""How long a SQLite writer waits for another one to commit [s] (a run holds the lock for seconds)."""
WRITE_ATTEMPTS = 5
"""Attempts of a write transaction that failed only because the database was busy."""
PG_LOCK_KEY = 0x72656C656166  # "releaf": the advisory lock that serialises releaf's writers on PostgreSQL
DDL_PREFIXES = ("CREATE", "ALTER", "DROP", "INSERT INTO ALEMBIC_VERSION", "UPDATE ALEMBIC_VERSION")
log = logging.getLogger(__name__)
T = TypeVar("T")


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


def _shown(url) -> str:
    """The URL as it may be printed: no password."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return str(url)


def _db_error(url, err: BaseException) -> ConfigError:
    """One line for a database that cannot be opened: the URL (no password) and the driver's first line."""
    orig = getattr(err, "orig", None) or err
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    hint = ""
    if "unable to open database file" in text:
        hint = " (does the folder exist, and may releaf write there?)"
    elif "file is not a database" in text:
        hint = " (the file exists but is not a SQLite database: give another --db)"
    return ConfigError(_shown(url), f"cannot open the database: {text}{hint}")


def _sqlite_connect(dbapi_connection, connection_record) -> None:
    # Take transactions out of pysqlite's hands (it would run DDL in autocommit) and enforce foreign keys,
    # which SQLite ignores unless asked, per connection.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: sa.Connection) -> None:
    # IMMEDIATE: the write lock is taken at BEGIN (waiting up to the busy timeout), so a transaction never reads
    # a state that another writer changes before it writes; read-only work asks for DEFERRED.
    mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
    connection.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str | None = None) -> sa.Engine:
    """An engine for ``database_url(url)``.

    SQLite connections get foreign keys, explicit ``BEGIN IMMEDIATE`` transactions and a busy timeout of
    :data:`SQLITE_BUSY_TIMEOUT_S`. An in-memory SQLite URL (``sqlite://``) shares one connection, otherwise every
    connection would see a new, empty database.

    Raises
    ------
    ConfigError : a URL that is not a SQLAlchemy URL, an unknown dialect or a missing driver
    """
    raw = database_url(url)
    try:
        resolved = sa.make_url(raw)
        kwargs: dict = {}
        if resolved.get_backend_name() == "sqlite":
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
            if resolved.database in (None, "", ":memory:"):
                kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        engine = sa.create_engine(resolved, **kwargs)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as err:
        raise ConfigError(_shown(raw), "not a database URL releaf can use: expected sqlite:///path/to/file.db or "
                                       "postgresql+psycopg://user@host/dbname") from err
    except ImportError as err:
        raise ConfigError(_shown(raw), f"the database driver is not installed ({err.name}); for PostgreSQL: "
                                       "pip install 'releaf[postgres]'") from err
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


def preflight(url: str | None = None) -> None:
    """Check, without writing anything, that the database can be opened: said before a long run, not after it.

    A SQLite file that does not exist yet is not created: its folder must exist and be writable. An existing
    database is opened read-only and checked for a half-made schema (see :func:`upgrade`).

    Raises
    ------
    ConfigError : a bad URL, a missing driver, a folder that is missing or read-only, a file that is not a
        database, an unreachable server, or a half-made database that holds rows
    """
    from releaf.store.repair import inspect_schema

    engine = make_engine(url)
    try:
        if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            path = Path(engine.url.database)
            if not path.exists():
                folder = path.parent if str(path.parent) else Path(".")
                if not folder.is_dir() or not os.access(folder, os.W_OK):
                    raise _db_error(engine.url, OSError("unable to open database file"))
                return
        with engine.connect().execution_options(sqlite_begin="DEFERRED") as connection:
            state = inspect_schema(connection)
        if state.half_made and state.rows:
            raise ConfigError(_shown(engine.url), state.refusal())
    except (sa.exc.OperationalError, sa.exc.DatabaseError, sa.exc.InterfaceError) as err:
        raise _db_error(engine.url, err) from None
    finally:
        engine.dispose()


def lock_for_write(connection: sa.Connection) -> None:
    """Serialise releaf's writers: on PostgreSQL a transaction-scoped advisory lock (SQLite: BEGIN IMMEDIATE did)."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})


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


def _ddl_checkpoint(conn, cursor, statement, parameters, context, executemany) -> None:
    if statement.lstrip().upper().startswith(DDL_PREFIXES):
        checkpoint("migrate:ddl")


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Migrate the database behind ``engine`` to ``revision`` (default: the newest), atomically.

    One transaction holds the write lock for the whole migration: a kill at any moment leaves the database as it
    was or fully migrated, and concurrent first runs wait for each other (the second finds the schema made). A
    half-made database left by an older release (tables without a recorded schema version) is repaired when it
    holds no rows, and refused otherwise (see :func:`releaf.store.repair.inspect_schema`).

    Raises
    ------
    ConfigError : a half-made database that holds rows (the message names the command that repairs it), or a
        database that cannot be opened
    """
    from releaf.store.repair import drop_empty_half_made, inspect_schema

    cfg = alembic_config(engine)
    try:
        with engine.begin() as connection:
            lock_for_write(connection)
            checkpoint("migrate:begin")
            state = inspect_schema(connection)
            if state.half_made:
                if state.rows:
                    raise ConfigError(_shown(engine.url), state.refusal())
                drop_empty_half_made(connection, state)
                log.warning("%s: repaired a half-made, empty schema (%s); created it again",
                            _shown(engine.url), ", ".join(sorted(state.tables)))
            sa.event.listen(connection, "after_cursor_execute", _ddl_checkpoint)
            try:
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, revision)
            finally:
                sa.event.remove(connection, "after_cursor_execute", _ddl_checkpoint)
            checkpoint("migrate:end")
    except (sa.exc.OperationalError, sa.exc.DatabaseError, sa.exc.InterfaceError) as err:
        raise _db_error(engine.url, err) from None


def _retryable(err: sa.exc.DBAPIError) -> bool:
    text = str(getattr(err, "orig", err)).lower()
    code = getattr(getattr(err, "orig", None), "sqlstate", None)
    return "database is locked" in text or "database is busy" in text or code in ("40001", "40P01")


def retrying(work: Callable[[], T], *, attempts: int = WRITE_ATTEMPTS, what: str = "write") -> T:
    """Run ``work`` (one whole transaction), again after a short random wait if the database was only busy.

    Retries SQLite's "database is locked" (busy timeout) and PostgreSQL's serialization failures and deadlocks
    (SQLSTATE 40001, 40P01); any other error is raised at once.
    """
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except sa.exc.DBAPIError as err:
            if not _retryable(err) or attempt == attempts:
                raise
            log.warning("%s: database busy (%s), attempt %d of %d", what, err.orig, attempt, attempts)
            time.sleep(random.uniform(0.05, 0.5) * attempt)
    raise AssertionError("unreachable")


@dataclass
class Store:
    """An open releaf database: the engine and a factory of one-transaction sessions."""

    engine: sa.Engine
    session_factory: sessionmaker[Session]

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back entirely on any exception.

        ``write=True`` (the default) takes the database's write lock at the start (SQLite ``BEGIN IMMEDIATE``,
        PostgreSQL advisory lock), so what the transaction reads stays true until it commits; ``write=False``
        reads without blocking other readers. Objects stay readable after the block (``expire_on_commit=False``),
        detached from the session.
        """
        with self.session_factory() as session, session.begin():
            options = {} if write else {"sqlite_begin": "DEFERRED"}
            connection = session.connection(execution_options=options)
            if write:
                lock_for_write(connection)
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

    Raises
    ------
    ConfigError : a bad URL, a database that cannot be opened or reached, or a half-made database with rows
    """
    engine = make_engine(url)
    try:
        upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    return Store(engine=engine, session_factory=sessionmaker(engine, expire_on_commit=False))
