"""Server time of ``GET /api/v1/jobs`` (the Jobs page of the Airflow UI) at 10,000 jobs on PostgreSQL (issue 14).

One command::

    .venv/bin/python benchmarks/bench_ui_jobs.py [--jobs 10000] [--runs-per-job 20] [--repeat 5]

What runs: a PostgreSQL database ``bench_ui_jobs`` (127.0.0.1:5432, ``MUXLY_TEST_PG_DSN`` for the admin DSN) is
created and migrated by Muxly's real Alembic revisions, then seeded in SQL with ``--jobs`` jobs on 20 connectors
(cron, webhook and manual; 10 % disabled) and ``--runs-per-job`` executions each (about 200,000 by default;
start times over the last weeks, one run in 13 failed, each with a ``result`` holding its counts), and
``ANALYZE``d. Muxly's real FastAPI app answers through ``TestClient`` with a logged-in admin; an ASGI wrapper
times each request inside the app (authentication, the query, the next-run computation by Airflow's timetable,
serialisation): that is the *server time* printed. Pages 1, 50 and 100 (``limit=100``) are timed with the
default sort, ``sort=last_run_at&order=desc``, a ``q`` filter and a ``last_status=failed`` filter, ``--repeat``
times each (median and max). The baseline is a plain ``SELECT * FROM scheduler_jobs ORDER BY id LIMIT 100
OFFSET n`` on the same database in the same run; the ratio is median page time / median baseline. The plan of
the default page query is checked for the index ``idx_job_executions_job_start``. The database is dropped at
the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("MUXLY_TEST_PG_DSN", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
DATABASE = "bench_ui_jobs"
PASSWORD = "bench password for the jobs page"
SCENARIOS: dict[str, str] = {
    "default sort": "",
    "sort=last_run_at desc": "&sort=last_run_at&order=desc",
    "q=12": "&q=12",
    "last_status=failed": "&last_status=failed",
}
PAGES = (1, 50, 100)
LIMIT = 100

Scope = MutableMapping[str, Any]
ASGI = Callable[[Scope, Any, Any], Awaitable[None]]


def _environment(url: str) -> None:
    """Airflow and Muxly settings for this process (before anything imports Airflow)."""
    home = Path(tempfile.mkdtemp(prefix="bench-ui-jobs-"))
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home / 'airflow.db'}"
    os.environ["AIRFLOW__MUXLY__SQL_ALCHEMY_CONN"] = url
    os.environ.setdefault("AIRFLOW__CORE__FERNET_KEY", "Yp4wW0n2qBvF3b2xJx0u6gFqzM7n0rZkWvJc5aQy8sM=")
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    sys.path.insert(0, str(ROOT))


def _admin_engine() -> Any:
    from sqlalchemy import create_engine

    return create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")


def _create_database() -> str:
    from sqlalchemy import text

    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{DATABASE}"


def _drop_database() -> None:
    from sqlalchemy import text

    from muxly_provider.db.engine import dispose_engines

    dispose_engines()
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
    admin.dispose()


SEED = [
    """INSERT INTO connectors (id, name, connector_type, enabled, auth_settings, connection_settings)
       SELECT 'conn_' || c, 'Connector ' || c, 'api', true, '{"auth_type": "none"}',
              '{"base_url": "http://127.0.0.1:9/api"}'
       FROM generate_series(0, 19) AS c""",
    """INSERT INTO scheduler_jobs (id, name, job_type, schedule, connector_id, action_type, action_params,
                                   enabled, max_retries, backoff_strategy, timeout_seconds)
       SELECT 'job_' || lpad(j::text, 5, '0'),
              'Orders sync ' || j || CASE WHEN j % 3 = 0 THEN ' (EU)' ELSE ' (US)' END,
              CASE WHEN j % 10 < 7 THEN 'cron' WHEN j % 10 < 9 THEN 'webhook' ELSE 'manual' END,
              CASE WHEN j % 10 < 7 THEN (ARRAY['@hourly', '*/15 * * * *', '0 3 * * *', '30 6 * * 1-5'])[j % 4 + 1]
                   ELSE NULL END,
              'conn_' || (j % 20), 'sync',
              CASE WHEN j % 5 = 0 THEN '{"timezone": "Europe/Paris"}' ELSE '{}' END,
              j % 10 <> 3, 3, 'exponential', 300
       FROM generate_series(0, :jobs - 1) AS j""",
    """INSERT INTO job_executions (id, job_id, start_time, end_time, status, result, attempt, triggered_by)
       SELECT 'run_' || j || '_' || k, 'job_' || lpad(j::text, 5, '0'),
              timezone('UTC', now()) - make_interval(hours => k * 7 + j % 5, mins => j % 60),
              timezone('UTC', now()) - make_interval(hours => k * 7 + j % 5, mins => j % 60)
                  + interval '42 seconds',
              CASE WHEN (j * 7 + k) % 13 = 0 THEN 'failed' ELSE 'success' END,
              CASE WHEN (j * 7 + k) % 13 = 0
                   THEN '{"records_in": 120, "delivered": 80, "dead_lettered": 40, "error": "delivery failed"}'
                   ELSE '{"records_in": 120, "delivered": 120, "dead_lettered": 0}' END,
              1, 'schedule'
       FROM generate_series(0, :jobs - 1) AS j, generate_series(1, :runs) AS k""",
]


def _seed(jobs: int, runs: int) -> int:
    from sqlalchemy import text

    from muxly_provider.db.engine import get_engine

    engine = get_engine()
    started = time.perf_counter()
    with engine.begin() as conn:
        for statement in SEED:
            conn.execute(text(statement), {"jobs": jobs, "runs": runs})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
        count = int(conn.execute(text("SELECT count(*) FROM job_executions")).scalar_one())
    print(f"seeded {jobs} jobs and {count} executions in {time.perf_counter() - started:.1f} s")
    return count


class Timed:
    """An ASGI wrapper recording the time from a request's arrival to the end of its answer."""

    def __init__(self, app: ASGI) -> None:
        self.app = app
        self.last = 0.0

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.last = time.perf_counter() - started


def _baseline(repeat: int) -> dict[int, float]:
    from sqlalchemy import text

    from muxly_provider.db.engine import get_engine

    times: dict[int, float] = {}
    with get_engine().connect() as conn:
        for page in PAGES:
            samples = []
            for _ in range(repeat + 1):
                started = time.perf_counter()
                rows = conn.execute(
                    text("SELECT * FROM scheduler_jobs ORDER BY id LIMIT :limit OFFSET :offset"),
                    {"limit": LIMIT, "offset": (page - 1) * LIMIT},
                ).all()
                samples.append(time.perf_counter() - started)
                assert len(rows) == LIMIT
            times[page] = statistics.median(samples[1:])
    return times


def _plan_uses_index() -> bool:
    from sqlalchemy import text

    from muxly_provider.api.v1.job_listing import JobFilters, jobs_page_query
    from muxly_provider.db.engine import get_engine

    engine = get_engine()
    page, _ = jobs_page_query("postgresql", JobFilters(), sort="id", order="asc", limit=LIMIT, offset=0)
    compiled = page.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        plan = "\n".join(str(r[0]) for r in conn.execute(text(f"EXPLAIN {compiled}")))
    return "idx_job_executions_job_start" in plan


def _run(repeat: int, jobs: int) -> None:
    from fastapi.testclient import TestClient

    from muxly_provider.api.app import create_app
    from muxly_provider.auth.users import create_user
    from muxly_provider.db.engine import session_scope

    with session_scope() as session:
        create_user(session, username="bench", email="bench@example.com", password=PASSWORD, roles=["admin"])
    timed = Timed(create_app())
    with TestClient(timed) as client:
        token = client.post("/api/v1/auth/login", json={"username": "bench", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        baseline = _baseline(repeat)
        print(
            f"\nbaseline SELECT * FROM scheduler_jobs ORDER BY id LIMIT {LIMIT}: "
            + ", ".join(f"page {p} {t * 1000:.2f} ms" for p, t in baseline.items())
        )
        print(f"plan of the default page uses idx_job_executions_job_start: {_plan_uses_index()}")
        print(f"\n{'scenario':<24} {'page':>4} {'total':>6} {'median ms':>10} {'max ms':>8} {'x base':>7}")
        worst = 0.0
        for name, query in SCENARIOS.items():
            for page in PAGES:
                url = f"/api/v1/jobs?limit={LIMIT}&offset={(page - 1) * LIMIT}{query}"
                samples = []
                total = 0
                for attempt in range(repeat + 1):  # the first request warms caches and is not counted
                    answer = client.get(url, headers=headers)
                    assert answer.status_code == 200, answer.text
                    total = int(answer.json()["total"])
                    if attempt:
                        samples.append(timed.last)
                median = statistics.median(samples)
                worst = max(worst, max(samples))
                ratio = median / baseline[page]
                print(
                    f"{name:<24} {page:>4} {total:>6} {median * 1000:>10.1f} {max(samples) * 1000:>8.1f}"
                    f" {ratio:>7.0f}"
                )
        print(f"\nslowest page: {worst * 1000:.1f} ms of server time (target: under 1000 ms at {jobs} jobs)")


def main() -> None:
    """Create, seed, time, drop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--runs-per-job", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    url = _create_database()
    _environment(url)
    try:
        from muxly_provider.db.migrate import upgrade

        upgrade(url)
        _seed(args.jobs, args.runs_per_job)
        _run(args.repeat, args.jobs)
    finally:
        _drop_database()
        print(f"dropped database {DATABASE}")


if __name__ == "__main__":
    main()
