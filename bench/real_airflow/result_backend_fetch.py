"""What one ``CeleryExecutor.sync()`` fetch costs the scheduler with the database result backend.

The provider's ``BulkStateFetcher._query_task_cls_from_db_backend`` opens ``app.backend.ResultSession()``
for every fetch. celery's ``SessionManager.get_engine`` keeps an engine (and its connection pool)
only in a process that has forked since the manager was made (a worker's prefork child, which
``register_after_fork`` marks); anywhere else, the scheduler included, it makes a new engine with
``NullPool`` each time, so every fetch opens a new PostgreSQL connection
(``celery/backends/database/session.py``, celery 5.4). This times that fetch, as the scheduler
makes it, against the same query on a pooled connection, on the harness's PostgreSQL.

    python bench/real_airflow/result_backend_fetch.py --workdir WORKDIR

(``harness.py setup`` first; it starts PostgreSQL if needed and runs in the Airflow 2.10 virtualenv's
Python.) Prints the medians of 60 fetches each.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

URL = "postgresql://airflow:airflow@127.0.0.1:5433/airflow"


def measure(n_fetches: int = 60) -> list[str]:
    from celery.backends.database.models import Task as TaskDb
    from celery.backends.database.session import SessionManager
    from sqlalchemy import select

    def timed(manager, ids):
        wall, cpu = [], []
        for _ in range(n_fetches + 1):
            t0, c0 = time.perf_counter(), time.process_time()
            session = manager.session_factory(dburi=URL)
            try:
                session.scalars(select(TaskDb).where(TaskDb.task_id.in_(ids))).all()
            finally:
                session.close()
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        return statistics.median(wall[1:]) * 1e3, statistics.median(cpu[1:]) * 1e3

    out = []
    fresh = SessionManager()
    assert not fresh.forked                   # as in the scheduler
    for n in (1, 8):
        wall, cpu = timed(fresh, [f"task-{i}" for i in range(n)])
        out.append(f"new connection per fetch (the scheduler's NullPool), {n} task id(s): {wall:.1f} ms wall, "
                   f"{cpu:.1f} ms of this process's CPU")
    pooled = SessionManager()
    pooled.forked = True                      # as in a worker's child: one engine, pooled
    wall, cpu = timed(pooled, ["task-0"])
    out.append(f"pooled connection, 1 task id: {wall:.1f} ms wall, {cpu:.1f} ms of this process's CPU")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", required=True, type=Path)
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if not args.inside:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from harness import start_services                        # a script beside this one
        start_services(args.workdir)
        python = args.workdir / "venv210" / "bin" / "python"
        return subprocess.run([str(python), __file__, "--workdir", str(args.workdir), "--inside"]).returncode
    print("\n".join(measure()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
