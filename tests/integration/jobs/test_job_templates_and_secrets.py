"""Issue 10 parts 3-4 through real runs (``dag.test()``): ``action_params`` render in Muxly's sandbox (no Airflow
``conn``/``var``, bounded output), and secrets in headers, query parameters and URLs are used by the run but never
reach the task log, XCom, the serialized DAG or the ``job_executions`` row."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import Engine, text

from muxly_provider.crypto import encrypt_row_secrets
from tests.db_helpers import insert_row

pytestmark = [
    pytest.mark.usefixtures("airflow_db", "files_root"),
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]

CONN_PASSWORD = "ConnPassw0rd-Airflow-91"
VAR_VALUE = "VarValue-Airflow-92"
SECRETS = {
    "url_password": "UrlPass-Secret-93",
    "url_query": "UrlQuery-Secret-94",
    "header": "Header-Secret-95",
    "query_param": "QueryParam-Secret-96",
    "hook_query": "HookQuery-Secret-97",
    "hook_header": "HookHeader-Secret-98",
}


@dataclass
class ApiServer:
    """Answers ``GET`` with two records and anything else with ``{"ok": true}``; records every request."""

    url: str = ""
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)


@pytest.fixture
def api_server() -> Iterator[ApiServer]:
    state = ApiServer()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _answer(self, body: Any) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            state.requests.append((self.command, self.path, dict(self.headers)))
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._answer([{"id": 1, "amount": 5}, {"id": 2, "amount": 7}])

        def do_POST(self) -> None:
            self._answer({"ok": True})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state
    server.shutdown()
    server.server_close()


def _insert(engine: Engine, table: str, **values: Any) -> None:
    """A row written as Muxly writes it (secrets encrypted)."""
    insert_row(engine, table, **encrypt_row_secrets(table, values))


def _seed(engine: Engine, server: ApiServer) -> None:
    host = server.url.removeprefix("http://")
    _insert(
        engine,
        "connectors",
        id="api",
        name="API",
        connector_type="api",
        auth_settings={"auth_type": "none"},
        connection_settings={
            "base_url": f"http://apiuser:{SECRETS['url_password']}@{host}/v1/items?apikey={SECRETS['url_query']}",
            "headers": {"X-Auth": SECRETS["header"]},
            "query_params": {"sig": SECRETS["query_param"]},
        },
    )
    _insert(
        engine,
        "destinations",
        id="hook",
        name="Hook",
        destination_type="webhook",
        config={
            "url": f"{server.url}/in?token={SECRETS['hook_query']}",
            "headers": {"X-Hook": SECRETS["hook_header"]},
        },
    )
    jobs = {
        "secrets": {"destination_ids": ["hook"]},
        "rendered": {
            "destination_ids": ["hook"],
            "data_spec": {"query_params": {"day": "{{ ds }}", "run": "{{ run_id }}", "year": "${YEAR}"}},
        },
        "reads_conn": {
            "destination_ids": ["hook"],
            "data_spec": {"query_params": {"leak": "{{ conn.muxly_tpl_target.password }}"}},
        },
        "reads_var": {
            "destination_ids": ["hook"],
            "data_spec": {"query_params": {"leak": "{{ var.value.muxly_tpl_var }}"}},
        },
        "huge": {
            "destination_ids": ["hook"],
            "data_spec": {"query_params": {"big": "{{ 'x' * 200000000 }}"}},
        },
    }
    for job_id, params in jobs.items():
        _insert(
            engine,
            "scheduler_jobs",
            id=job_id,
            name=job_id,
            job_type="manual",
            connector_id="api",
            action_type="export",
            action_params=params,
            max_retries=0,
        )


def _result(engine: Engine, job_id: str) -> tuple[str, str]:
    with engine.connect() as conn:
        [(status, result)] = conn.execute(
            text("SELECT status, result FROM job_executions WHERE job_id = :j"), {"j": job_id}
        ).all()
    return str(status), str(result)


@pytest.fixture
def airflow_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real Airflow connection and variable, as a deployment defines them (environment variables)."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_MUXLY_TPL_TARGET",
        json.dumps({"conn_type": "postgres", "host": "db.invalid", "login": "u", "password": CONN_PASSWORD}),
    )
    monkeypatch.setenv("AIRFLOW_VAR_MUXLY_TPL_VAR", VAR_VALUE)


def _dags(engine: Engine, server: ApiServer) -> dict[str, Any]:
    from muxly_provider.dag_factory.register import register_dags

    _seed(engine, server)
    namespace: dict[str, Any] = {}
    register_dags(namespace)
    return namespace


@pytest.mark.usefixtures("airflow_secrets")
def test_action_params_render_in_the_sandbox(
    muxly_engine: Engine,
    api_server: ApiServer,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    dags = _dags(muxly_engine, api_server)

    rendered = dags["muxly__rendered"].test()
    assert rendered.state == "success"
    [(_, path, _)] = [r for r in api_server.requests if r[0] == "GET"]
    expected_day = rendered.logical_date or rendered.start_date
    assert f"day={expected_day:%Y-%m-%d}" in path
    assert f"year={expected_day:%Y}" in path
    assert "run=manual__" in path

    for job_id in ("reads_conn", "reads_var"):
        api_server.requests.clear()
        run = dags[f"muxly__{job_id}"].test()
        assert run.state == "failed"
        status, result = _result(muxly_engine, job_id)
        assert status == "failed"
        assert "action_params.data_spec.query_params.leak" in result
        assert "undefined" in result
        assert api_server.requests == []  # nothing was fetched, nothing was sent

    huge = dags["muxly__huge"].test()
    assert huge.state == "failed"
    _, result = _result(muxly_engine, "huge")
    assert "action_params.data_spec.query_params.big" in result
    assert "[muxly] template_max_bytes" in result

    logs = capfd.readouterr()
    text_seen = caplog.text + logs.out + logs.err
    for job_id in ("reads_conn", "reads_var"):
        text_seen += _result(muxly_engine, job_id)[1]
    assert CONN_PASSWORD not in text_seen
    assert VAR_VALUE not in text_seen


def test_secrets_are_used_but_never_shown(
    muxly_engine: Engine,
    api_server: ApiServer,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")  # requests' own log lines quote URLs (restored after)
    dag = _dags(muxly_engine, api_server)["muxly__secrets"]
    serialized = json.dumps(DagSerialization.to_dict(dag), default=str)
    run = dag.test()
    assert run.state == "success"

    # The run used every secret (decrypted), so they were really there to leak.
    [(_, get_path, get_headers)] = [r for r in api_server.requests if r[0] == "GET"]
    assert f"apikey={SECRETS['url_query']}" in get_path and f"sig={SECRETS['query_param']}" in get_path
    assert get_headers["X-Auth"] == SECRETS["header"]
    posts = [r for r in api_server.requests if r[0] == "POST"]
    assert posts and all(f"token={SECRETS['hook_query']}" in p[1] for p in posts)
    assert all(p[2]["X-Hook"] == SECRETS["hook_header"] for p in posts)

    xcoms = [json.dumps(ti.xcom_pull(task_ids=ti.task_id), default=str) for ti in run.get_task_instances()]
    status, result = _result(muxly_engine, "secrets")
    assert status == "success"
    with muxly_engine.connect() as conn:
        stored = json.dumps(
            [
                list(r)
                for r in conn.execute(
                    text("SELECT connection_settings, config FROM connectors, destinations")
                )
            ]
        )
    logs = capfd.readouterr()
    seen = {
        "serialized DAG": serialized,
        "XCom": "\n".join(xcoms),
        "job_executions.result": result,
        "task log": logs.out + logs.err,
        "stored rows": stored,
    }
    for where, text_seen in seen.items():
        for name, secret in SECRETS.items():
            assert secret not in text_seen, f"{name} shows in the {where}"
    # Whatever a library logs inside the task (a URL's query, a header) is masked by Airflow's task log masker.
    from airflow.sdk._shared.secrets_masker import redact

    for name, secret in SECRETS.items():
        assert secret not in str(redact(f"GET /path?x={secret} header {secret}")), f"{name} is not masked"


@pytest.mark.usefixtures("airflow_secrets")
def test_a_job_id_is_never_rendered_by_airflow(muxly_engine: Engine, api_server: ApiServer) -> None:
    """Operators carry the job id only, with no Airflow ``template_fields``: an id that looks like a template
    stays an id (Airflow's renderer would have read the connection's password)."""
    job_id = "tpl{{ conn.muxly_tpl_target.password }}"
    _seed(muxly_engine, api_server)
    _insert(
        muxly_engine,
        "scheduler_jobs",
        id=job_id,
        name="template-looking id",
        job_type="manual",
        connector_id="api",
        action_type="export",
        action_params={"destination_ids": ["hook"]},
        max_retries=0,
    )
    from muxly_provider.dag_factory.register import register_dags

    namespace: dict[str, Any] = {}
    register_dags(namespace)
    [dag] = [dag for dag_id, dag in namespace.items() if dag_id.startswith("muxly__tpl")]
    run = dag.test()
    status, result = _result(muxly_engine, job_id)
    assert CONN_PASSWORD not in result
    assert run.state == "success" and status == "success", result
