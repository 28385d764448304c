"""``make bench-seed-large``: a PostgreSQL cluster holding 10 million projects, kept in
``reports/bench/pg-10m/`` (gitignored) so it is seeded once; ``make bench`` measures the list on
it too when it is there.

The schema comes from the service's own migrations, the rows from ``loadtests.seed`` (one
``INSERT ... SELECT generate_series`` each, with the projects table's indexes and keys rebuilt
after the insert): the 100k seed's layout, the same 1,000 owners, so a member's page query has
the same shape and each owner has 10,000 projects instead of 100. Migrations are applied again
whenever the cluster is opened, so a new one reaches the kept data.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kit.paths import ROOT
from loadtests.seed import SeedSize, seed
from testsupport import processes
from testsupport.servers import postgres_server

HOME = ROOT / "reports" / "bench" / "pg-10m"
SEEDED = HOME / "seeded.json"  # written last: a cluster without it is not (fully) seeded
LARGE = SeedSize(projects=10_000_000, owners=1_000)
NOT_SEEDED = "not seeded: make bench-seed-large"


def seeded() -> dict[str, Any] | None:
    """What the kept cluster holds and how long seeding it took, or None when there is none."""
    return dict(json.loads(SEEDED.read_text())) if SEEDED.exists() else None


@contextlib.contextmanager
def cluster(log_dir: Path) -> Iterator[str]:
    """The kept cluster, running and migrated to head; yields its database URL."""
    with postgres_server(keep_in=HOME) as pg:
        url = pg.url("loadtest")
        log_dir.mkdir(parents=True, exist_ok=True)
        processes.migrate(log_dir, url)
        yield url


def seed_cluster(size: SeedSize, log_dir: Path) -> dict[str, Any]:
    """A new cluster with ``size`` rows, replacing any kept one; returns what ``seeded()`` will."""
    SEEDED.unlink(missing_ok=True)
    shutil.rmtree(HOME, ignore_errors=True)
    started = time.perf_counter()
    with postgres_server(keep_in=HOME) as pg:
        # Fewer checkpoints while millions of rows are written (the cluster is a benchmark's).
        pg.psql("ALTER SYSTEM SET max_wal_size = '8GB'")
        pg.psql("SELECT pg_reload_conf()")
        pg.psql("CREATE DATABASE loadtest")
        url = pg.url("loadtest")
        log_dir.mkdir(parents=True, exist_ok=True)
        processes.migrate(log_dir, url)
        insert_seconds = asyncio.run(seed(url, size, rebuild_indexes=True))
        pg.psql("ALTER SYSTEM RESET max_wal_size")
        pg.psql("SELECT pg_reload_conf()")
        pg.psql("CHECKPOINT")  # a short shutdown, and the WAL kept shrinks back to the default's
    result = {
        **asdict(size),
        "seconds": round(time.perf_counter() - started, 1),
        "insert_and_index_seconds": round(insert_seconds, 1),
    }
    SEEDED.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.bench.large", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--projects", type=int, default=LARGE.projects)
    parser.add_argument("--owners", type=int, default=LARGE.owners)
    parser.add_argument("--force", action="store_true", help="seed again even when a cluster is kept")
    args = parser.parse_args(argv)
    kept = seeded()
    if kept is not None and not args.force:
        print(f"already seeded ({kept['projects']} projects in {kept['seconds']} s); --force seeds again")
        return 0
    result = seed_cluster(SeedSize(args.projects, args.owners), HOME.parent / "logs")
    print(
        f"seeded {result['projects']} projects / {result['owners']} owners in {result['seconds']} s "
        f"(cluster, migrations, rows, indexes; rows and indexes {result['insert_and_index_seconds']} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
