"""Half-made databases: detection, the safe automatic repair, and ``releaf db repair`` / ``releaf db check``.

Releases before 0.2 created the schema one ``CREATE TABLE`` at a time outside a transaction; a kill during a first
run left some tables and no row in ``alembic_version``, and every later run failed with "table packs already
exists". :func:`releaf.store.db.upgrade` now migrates in one transaction, and detects such a database:

- tables of releaf's but no schema version, and **no rows** in any of them: nothing can be lost, so the tables are
  dropped and the schema created again (automatically, with a warning in the log);
- the same **with rows**: refused, naming ``releaf db repair``, which records the schema version only when the
  tables are exactly those of a known revision (compared by Alembic's autogenerate), and refuses otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from releaf.errors import ConfigError
from releaf.store.models import Base

VERSION_TABLE = "alembic_version"


@dataclass(frozen=True)
class SchemaState:
    """What a database holds before migration: releaf's tables, their rows, and the recorded schema version."""

    tables: frozenset[str]
    rows: int
    version: str | None
    url: str = ""

    @property
    def half_made(self) -> bool:
        """Some of releaf's tables exist, but no schema version was recorded."""
        return bool(self.tables) and self.version is None

    def refusal(self) -> str:
        return (f"half-made database: releaf tables ({', '.join(sorted(self.tables))}) exist without a recorded "
                f"schema version, and they hold {self.rows} rows; releaf will not guess. Run "
                f"`releaf db repair --db {self.url or 'URL'}` (it records the version if the tables are complete)")


def inspect_schema(connection: sa.Connection) -> SchemaState:
    """The releaf tables present, their total rows and the recorded Alembic version (None if none)."""
    present = set(sa.inspect(connection).get_table_names())
    ours = frozenset(present & set(Base.metadata.tables))
    version = None
    if VERSION_TABLE in present:
        version = connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    rows = sum(connection.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar_one() for t in ours)
    url = connection.engine.url.render_as_string(hide_password=True)
    return SchemaState(tables=ours, rows=rows, version=version, url=url)


def drop_empty_half_made(connection: sa.Connection, state: SchemaState) -> None:
    """Drop the tables of an empty half-made schema (children first) and the version table, in the caller's
    transaction."""
    if state.rows:
        raise ConfigError(state.url, state.refusal())
    for table in reversed(Base.metadata.sorted_tables):
        if table.name in state.tables:
            connection.execute(sa.text(f'DROP TABLE "{table.name}"'))
    connection.execute(sa.text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))


@dataclass(frozen=True)
class RepairResult:
    """What ``releaf db repair`` found and did."""

    url: str
    action: str          # "nothing to do", "recreated empty schema", "recorded version <rev>"
    details: tuple[str, ...] = field(default=())


def _schema_differences(connection: sa.Connection) -> list:
    ctx = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(ctx, Base.metadata)


def repair(url: str | None = None) -> RepairResult:
    """Repair a half-made database, or refuse with what is wrong.

    An empty half-made schema is dropped and made again. A half-made schema with rows gets its version recorded
    only if its tables are exactly those of the newest revision; anything else is refused.

    Raises
    ------
    ConfigError : the tables differ from every known revision (the message lists the differences)
    """
    from releaf.store.db import _shown, alembic_config, lock_for_write, make_engine, upgrade

    engine = make_engine(url)
    shown = _shown(engine.url)
    try:
        with engine.begin() as connection:
            lock_for_write(connection)
            state = inspect_schema(connection)
            if not state.half_made:
                return RepairResult(shown, "nothing to do" if state.version else "no releaf tables yet")
            if not state.rows:
                drop_empty_half_made(connection, state)
                action = "recreated the empty schema"
            else:
                diffs = _schema_differences(connection)
                if diffs:
                    raise ConfigError(shown, f"cannot repair: the tables differ from the newest schema in "
                                             f"{len(diffs)} ways (first: {diffs[0]}); restore the last backup")
                head = ScriptDirectory.from_config(alembic_config()).get_current_head()
                cfg = alembic_config(engine)
                cfg.attributes["connection"] = connection
                command.stamp(cfg, head)
                return RepairResult(shown, f"recorded version {head}", (f"{state.rows} rows kept",))
        upgrade(engine)
        return RepairResult(shown, action)
    finally:
        engine.dispose()


@dataclass(frozen=True)
class IntegrityReport:
    """``releaf db check``: the database's own checks and releaf's record rules. ``ok`` when ``problems`` is empty."""

    url: str
    version: str | None
    counts: dict[str, int]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


_RULES = {
    "a test file (sha256) recorded twice": "SELECT sha256 FROM tests GROUP BY sha256 HAVING count(*) > 1",
    "a module serial recorded twice": "SELECT serial FROM modules GROUP BY serial HAVING count(*) > 1",
    "a pack VIN recorded twice": "SELECT vin FROM packs GROUP BY vin HAVING count(*) > 1",
    "a module in two stations": "SELECT module_id FROM station_modules GROUP BY module_id HAVING count(*) > 1",
    "a test with two diagnoses": "SELECT test_id FROM diagnoses GROUP BY test_id HAVING count(*) > 1",
    "a module without any test": "SELECT m.serial FROM modules m WHERE NOT EXISTS "
                                 "(SELECT 1 FROM tests t WHERE t.module_id = m.id)",
    "a grade whose diagnosis is of another module's test": "SELECT g.id FROM grades g JOIN diagnoses d ON "
        "d.id = g.diagnosis_id JOIN tests t ON t.id = d.test_id "
        "WHERE t.module_id IS NULL OR t.module_id != g.module_id",
    "a station without modules": "SELECT s.serial FROM stations s WHERE NOT EXISTS "
                                 "(SELECT 1 FROM station_modules l WHERE l.station_id = s.id)",
    "a built station with a rejected member not flagged": "SELECT s.serial FROM stations s JOIN station_modules l ON "
        "l.station_id = s.id JOIN grades g ON g.module_id = l.module_id WHERE s.status = 'built' AND "
        "coalesce(g.override_grade, g.grade) = 'reject' AND g.id = (SELECT max(g2.id) FROM grades g2 WHERE "
        "g2.module_id = g.module_id)",
}


def check(url: str | None = None) -> IntegrityReport:
    """Check a releaf database: the engine's own integrity and foreign-key checks, and every record rule.

    SQLite: ``PRAGMA integrity_check`` and ``PRAGMA foreign_key_check``. Both: no duplicate test, module, pack or
    station membership; no module without a test; no grade pointing at another module's test; no station without
    modules; no built station keeping a member whose latest grade is reject.
    """
    from releaf.store.db import _shown, make_engine

    engine = make_engine(url)
    shown = _shown(engine.url)
    problems: list[str] = []
    try:
        with engine.connect().execution_options(sqlite_begin="DEFERRED") as connection:
            state = inspect_schema(connection)
            if state.half_made:
                problems.append(state.refusal())
            if connection.dialect.name == "sqlite":
                result = [r[0] for r in connection.exec_driver_sql("PRAGMA integrity_check")]
                if result != ["ok"]:
                    problems += [f"integrity_check: {r}" for r in result]
                problems += [f"foreign key: {r[0]} row {r[1]} points at a missing {r[2]}"
                             for r in connection.exec_driver_sql("PRAGMA foreign_key_check")]
            counts = {}
            if state.version is not None:
                for t in sorted(Base.metadata.tables):
                    counts[t] = connection.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar_one()
                for rule, sql in _RULES.items():
                    bad = [str(r[0]) for r in connection.execute(sa.text(sql))]
                    if bad:
                        problems.append(f"{rule}: {', '.join(bad[:5])}{' …' if len(bad) > 5 else ''}")
    except (sa.exc.OperationalError, sa.exc.DatabaseError) as err:
        from releaf.store.db import _db_error

        raise _db_error(engine.url, err) from None
    finally:
        engine.dispose()
    return IntegrityReport(url=shown, version=state.version, counts=counts, problems=tuple(problems))
