"""The bulk seed (make bench-seed-large's) leaves the migrations' schema and the same data layout."""

from __future__ import annotations

import asyncio
from pathlib import Path

from loadtests.seed import SeedSize, seed
from testsupport import processes
from testsupport.servers import postgres_server

SCHEMA = """
SELECT indexdef FROM pg_indexes WHERE tablename = 'projects'
UNION ALL
SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'projects'::regclass
ORDER BY 1
"""
# Rows, owners, and the fewest and most projects per owner (100 each: the same page shape).
LAYOUT = """
SELECT count(*), count(DISTINCT p.owner_id), min(n), max(n) FROM projects p
JOIN (SELECT owner_id, count(*) AS n FROM projects GROUP BY owner_id) c USING (owner_id)
"""


def test_rebuilding_the_indexes_after_the_insert_leaves_the_same_schema_and_rows(tmp_path: Path) -> None:
    size = SeedSize(projects=1_000, owners=10, managers=2)
    with postgres_server() as pg:
        found = {}
        for name, rebuild in (("plain", False), ("bulk", True)):
            pg.psql(f"CREATE DATABASE {name}")
            processes.migrate(tmp_path, pg.url(name))
            asyncio.run(seed(pg.url(name), size, "not-a-real-hash", rebuild_indexes=rebuild))
            found[name] = (pg.psql(SCHEMA, name), pg.psql(LAYOUT, name))
    plain_schema, plain_layout = found["plain"]
    assert "pk_projects PRIMARY KEY (id)" in plain_schema
    assert "FOREIGN KEY (owner_id) REFERENCES users(id) ON DELETE CASCADE" in plain_schema
    assert plain_layout.strip() == "1000|10|100|100"
    assert found["bulk"] == found["plain"]
