"""Persistence of the plant's records (SQLAlchemy 2; SQLite default, PostgreSQL via ``RELEAF_DATABASE_URL``).

>>> from releaf.store import open_store, queries
>>> store = open_store("sqlite:///plant.db")          # doctest: +SKIP
>>> with store.transaction() as s:                     # doctest: +SKIP
...     pack = queries.get_or_create_pack(s, "SJNFAAZE0U6012345", "Nissan Leaf AZE0 24 kWh")

Modules: ``models`` (tables), ``db`` (URL, engine, migrations, transactions), ``queries`` (reads and writes),
``lineage`` (station → modules → packs → tests → diagnoses → grades).
"""

from releaf.store.db import Store, database_url, open_store
from releaf.store.lineage import lineage
from releaf.store.models import GRADES

__all__ = ["GRADES", "Store", "database_url", "lineage", "open_store"]
