"""A webhook answering 429 for the whole run: each batch is tried ``1 + retry_count`` times (honouring
``Retry-After``), then dead-lettered with the error; nothing is lost (a real run through ``dag.test()``)."""

from __future__ import annotations

from sqlalchemy import Engine

from tests.integration.destinations.destination_servers import http_recorder
from tests.integration.destinations.test_destinations_in_jobs import (
    RECORDS,
    _dead_letters,
    _job,
    _result,
    pytestmark,  # noqa: F401 (the same Airflow DB, files_root and SQLite Muxly DB)
    sales_api,  # noqa: F401 (fixture)
)


def test_a_webhook_rate_limited_for_the_whole_run_is_dead_lettered(
    muxly_engine: Engine,
    sales_api: str,  # noqa: F811 (the fixture imported above)
) -> None:
    with http_recorder() as webhook:
        webhook.then = (429, {"Retry-After": "0"})
        dag = _job(
            muxly_engine,
            sales_api,
            "limited",
            {"hook": ("webhook", {"url": webhook.url, "batch_size": 10, "retry_count": 2})},
        )
        dag_run = dag.test()

    assert dag_run.state == "failed"
    # Every batch sent got its 3 tries (the runner may stop sending after a batch failed for good).
    assert webhook.arrivals and len(webhook.arrivals) % 3 == 0 and webhook.requests == []
    hook = _result(muxly_engine, "limited")["destinations"]["hook"]
    assert (hook["routed"], hook["delivered"], hook["dead_lettered"]) == (len(RECORDS), 0, len(RECORDS))
    letters = _dead_letters(muxly_engine)
    assert [r for letter in letters for r in letter["records"]] == RECORDS
    assert all("HTTP 429" in letter["error"] and "after 3 tries" in letter["error"] for letter in letters)
