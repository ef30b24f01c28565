"""Every connector type runs inside a real job (``dag.test()``): rows seeded with plain SQL, local servers,
a file destination; plus a job whose source throttles for ever and one whose token is refused."""

from __future__ import annotations

import gzip
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from muxly_provider.http import retry as http_retry
from tests.db_helpers import insert_row as _insert
from tests.plugin_pkg.plugin_install import install_plugin, uninstall_plugin
from tests.unit.connectors.fake_apis import TOKEN as HUBSPOT_TOKEN
from tests.unit.connectors.fake_apis import FakeBigQuery, FakeGa4, FakeHubSpot
from tests.unit.connectors.fake_servers import LocalServer, Reply, Request, TokenEndpoint, rsa_service_account

pytestmark = [
    pytest.mark.usefixtures("airflow_db", "files_root"),
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]

API_ROWS = [{"id": i, "amount": i * 10} for i in range(57)]


class Sources:
    """One loopback server answering as the api source, Google (token, BigQuery, GA4) and HubSpot."""

    def __init__(self) -> None:
        self.tokens = TokenEndpoint(refresh_token="api-rt")
        self.google_tokens = TokenEndpoint()
        self.bigquery = FakeBigQuery(self.google_tokens, total=42)
        self.ga4 = FakeGa4(self.google_tokens, total=31)
        self.hubspot = FakeHubSpot(total=120, throttle=frozenset({3}))
        self.api_calls = 0
        self.days: list[str] = []

    def __call__(self, request: Request) -> Reply:
        if request.path == "/oauth/token":
            return self.tokens(request)
        if request.path == "/token":
            return self.google_tokens(request)
        if request.path.startswith("/bigquery/"):
            return self.bigquery(request)
        if request.path.startswith("/v1beta/"):
            return self.ga4(request)
        if request.path.startswith("/crm/"):
            return self.hubspot(request)
        if request.path == "/api/orders":
            return self._api(request)
        if request.path == "/api/throttled":
            return Reply(429, {"message": "slow down"}, headers={"Retry-After": "0"})
        return Reply(404, {})

    def _api(self, request: Request) -> Reply:
        self.api_calls += 1
        if self.api_calls == 2:
            return Reply(503, {}, headers={"Retry-After": "0"})
        if self.api_calls == 4:
            return Reply(drop=True)
        if not self.tokens.bearer_ok(request):
            return Reply(401, {"error": "invalid_token"})
        self.days.append(request.query.get("day", ""))
        start = int(request.query.get("cursor") or 0)
        end = min(start + 20, len(API_ROWS))
        return Reply(body={"data": API_ROWS[start:end], "next": str(end) if end < len(API_ROWS) else None})


@pytest.fixture
def sources(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sources, str]]:
    monkeypatch.setattr(http_retry, "default_sleep", lambda seconds: None)
    handler = Sources()
    with LocalServer(handler) as server:
        yield handler, server.url


@pytest.fixture
def counter_plugin(tmp_path: Path) -> Iterator[Path]:
    target = install_plugin(tmp_path / "plugin-site")
    yield target
    uninstall_plugin(target)


def _export_job(
    engine: Engine,
    out: Path,
    cid: str,
    connector_type: str,
    auth: dict[str, Any],
    settings: dict[str, Any],
    action: str = "export",
    **params: Any,
) -> None:
    _insert(
        engine,
        "connectors",
        id=cid,
        name=cid,
        connector_type=connector_type,
        auth_settings=auth,
        connection_settings=settings,
    )
    _insert(
        engine,
        "destinations",
        id=f"{cid}_out",
        name=f"{cid} out",
        destination_type="file",
        config={"output_dir": str(out / cid), "file_format": "jsonl", "file_prefix": cid},
    )
    if action == "export":
        params["destination_ids"] = [f"{cid}_out"]
    else:
        _insert(engine, "routing_rules", id=f"{cid}_all", name="all", priority=1, condition=None)
        _insert(engine, "rule_destinations", rule_id=f"{cid}_all", destination_id=f"{cid}_out")
        _insert(engine, "routes", id=f"{cid}_route", name="route", connector_id=cid)
        _insert(engine, "route_rules", route_id=f"{cid}_route", rule_id=f"{cid}_all", sequence_order=1)
    _insert(
        engine,
        "scheduler_jobs",
        id=f"{cid}_job",
        name=f"{cid} job",
        job_type="manual",
        connector_id=cid,
        action_type=action,
        action_params=params,
        max_retries=0,
    )


def _seed(engine: Engine, sources: Sources, url: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _export_job(
        engine,
        out,
        "api_src",
        "api",
        {
            "auth_type": "oauth",
            "params": {
                "client_id": "c",
                "client_secret": "cs",
                "refresh_token": "api-rt",
                "token_url": url + "/oauth/token",
            },
        },
        {
            "base_url": url + "/api/orders",
            "metrics_path": "data",
            "query_params": {"day": "${DATE}"},
            "pagination": {"type": "cursor", "cursor_path": "next"},
            "retry": {"max_attempts": 3, "initial_backoff_ms": 1},
        },
        action="sync",
    )
    source_db = tmp_path / "source.db"
    with sqlite3.connect(source_db) as conn:
        conn.execute("CREATE TABLE sales (id INTEGER, region TEXT, amount REAL)")
        conn.executemany(
            "INSERT INTO sales VALUES (?, ?, ?)", [(i, "EU" if i % 3 else "US", i * 2.5) for i in range(30)]
        )
    _export_job(
        engine,
        out,
        "db_src",
        "database",
        {"auth_type": "none"},
        {"connection_string": f"sqlite:///{source_db}"},
        action="query",
        query="SELECT id, region, amount FROM sales WHERE region = :region ORDER BY id",
        parameters={"region": "EU"},
    )
    files = tmp_path / "files"
    files.mkdir()
    for part in range(3):
        rows = "".join(json.dumps({"part": part, "n": n}) + "\n" for n in range(5))
        (files / f"part-{part}.jsonl.gz").write_bytes(gzip.compress(rows.encode()))
    _export_job(
        engine,
        out,
        "file_src",
        "file",
        {"auth_type": "none"},
        {"glob": f"{files}/*.jsonl.gz", "format": "jsonl"},
    )
    info, public_key = rsa_service_account(url + "/token")
    sources.google_tokens.public_key = public_key
    google_auth = {"auth_type": "service_account", "params": {"service_account_json": json.dumps(info)}}
    _export_job(
        engine,
        out,
        "bq_src",
        "bigquery",
        google_auth,
        {"project_id": "proj", "location": "EU", "api_base_url": url, "max_results": 10},
        action="query",
        query="SELECT * FROM t",
    )
    _export_job(
        engine,
        out,
        "ga4_src",
        "ga4",
        google_auth,
        {"property_id": "123", "api_base_url": url},
        data_spec={
            "dimensions": ["date", "country"],
            "metrics": ["activeUsers", "purchaseRevenue"],
            "page_size": 10,
        },
    )
    _export_job(
        engine,
        out,
        "hs_src",
        "hubspot",
        {"auth_type": "bearer", "params": {"token": HUBSPOT_TOKEN}},
        {"api_base_url": url, "properties": {"contacts": ["email"]}},
        action="sync",
        data_spec={"objectType": "contacts"},
    )
    _export_job(
        engine,
        out,
        "plugin_src",
        "plugin:counter",
        {"auth_type": "none"},
        {"count": 25, "prefix": "p"},
        data_spec={"start": 100},
    )
    _export_job(
        engine,
        out,
        "storm_src",
        "api",
        {"auth_type": "none"},
        {"base_url": url + "/api/throttled", "retry": {"max_attempts": 4}},
    )
    _export_job(
        engine,
        out,
        "badtoken_src",
        "hubspot",
        {"auth_type": "bearer", "params": {"token": "pat-leaked?"}},
        {"api_base_url": url},
    )


def _execution(engine: Engine, job_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT status, result FROM job_executions WHERE job_id = :j"), {"j": job_id}
        ).one()
    return {"status": row.status, "result": json.loads(row.result)}


def _written(tmp_path: Path, cid: str) -> list[dict[str, Any]]:
    [path] = (tmp_path / "out" / cid).iterdir()
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_connector_type_runs_in_a_job(
    muxly_engine: Engine, sources: tuple[Sources, str], counter_plugin: Path, tmp_path: Path
) -> None:
    from muxly_provider.dag_factory.register import register_dags

    handler, url = sources
    _seed(muxly_engine, handler, url, tmp_path)
    namespace: dict[str, Any] = {}
    register_dags(namespace)
    expected = {
        "api_src": 57,
        "db_src": 20,
        "file_src": 15,
        "bq_src": 42,
        "ga4_src": 31,
        "hs_src": 120,
        "plugin_src": 25,
    }
    assert {f"muxly__{cid}_job" for cid in expected} <= set(namespace)
    for cid, count in expected.items():
        dag_run = namespace[f"muxly__{cid}_job"].test()
        execution = _execution(muxly_engine, f"{cid}_job")
        assert dag_run.state == "success", (cid, execution)
        assert execution["status"] == "success"
        assert execution["result"]["records_in"] == count, cid
        assert execution["result"]["destinations"][f"{cid}_out"]["delivered"] == count, cid
        assert len(_written(tmp_path, cid)) == count, cid

    assert [r["id"] for r in _written(tmp_path, "api_src")] == list(range(57))
    assert handler.days and all(len(day) == 10 and day[4] == "-" for day in handler.days)  # ${DATE} resolved
    assert {r["region"] for r in _written(tmp_path, "db_src")} == {"EU"}
    assert _written(tmp_path, "file_src")[5] == {"part": 1, "n": 0}
    assert _written(tmp_path, "bq_src")[0]["geo"] == {"country": "US", "pop": 0}
    assert _written(tmp_path, "ga4_src")[0]["activeUsers"] == 0
    assert _written(tmp_path, "hs_src")[0]["email"] == "c0@example.com"
    assert _written(tmp_path, "plugin_src")[0] == {"n": 100, "label": "p-100"}

    for cid, message in (("storm_src", "gave up after 4 attempts"), ("badtoken_src", "HTTP 401")):
        dag_run = namespace[f"muxly__{cid}_job"].test()
        execution = _execution(muxly_engine, f"{cid}_job")
        assert dag_run.state == "failed"
        assert execution["status"] == "failed"
        assert (
            f"connector {cid!r}" in execution["result"]["error"] and message in execution["result"]["error"]
        )
        assert "pat-leaked" not in json.dumps(execution["result"])


def test_connectors_test_command(
    muxly_engine: Engine, sources: tuple[Sources, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from muxly_provider.cli.connectors_command import test_connector

    handler, url = sources
    _seed(muxly_engine, handler, url, tmp_path)
    for cid in ("api_src", "db_src", "file_src", "bq_src", "ga4_src", "hs_src"):
        test_connector(argparse.Namespace(connector_id=cid))
        assert capsys.readouterr().out.startswith("OK: "), cid
    for cid, message in (("badtoken_src", "HTTP 401"), ("nope", "an existing connector")):
        with pytest.raises(SystemExit) as exit_info:
            test_connector(argparse.Namespace(connector_id=cid))
        out = capsys.readouterr().out
        assert exit_info.value.code == 1 and out.startswith("FAILED: ") and message in out
        assert "pat-leaked" not in out
