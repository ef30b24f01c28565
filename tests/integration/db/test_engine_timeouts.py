"""Muxly's engine bounds connections and statements ([muxly] db_connect_timeout, db_statement_timeout).

Against the real PostgreSQL: a statement beyond the statement timeout is cancelled by the server, and a server
that accepts TCP but never answers fails the connection within the connect timeout.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from muxly_provider.db.engine import build_engine, dispose_engines, get_engine


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port on loopback that accepts TCP connections and never sends a byte."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        server.close()


@pytest.mark.postgres
def test_statement_beyond_the_statement_timeout_fails_fast(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__MUXLY__SQL_ALCHEMY_CONN", postgres_url)
    monkeypatch.setenv("AIRFLOW__MUXLY__DB_SCHEMA", "muxly_timeouts")
    monkeypatch.setenv("AIRFLOW__MUXLY__DB_STATEMENT_TIMEOUT", "1")
    dispose_engines()
    engine = get_engine()
    try:
        with engine.connect() as conn:
            # The search path option still applies next to the timeout option.
            assert conn.execute(text("SHOW search_path")).scalar_one() == "muxly_timeouts,public"
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "1s"
            assert conn.execute(text("SELECT pg_sleep(0.2)")).all()  # shorter statements run
        started = time.monotonic()
        with pytest.raises(OperationalError, match="statement timeout"), engine.connect() as conn:
            conn.execute(text("SELECT pg_sleep(30)"))
        assert time.monotonic() - started < 5
    finally:
        dispose_engines()


@pytest.mark.postgres
def test_statement_timeout_zero_means_none_and_url_options_win(postgres_url: str) -> None:
    engine = build_engine(postgres_url, statement_timeout=0, connect_timeout=5)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "0"
    finally:
        engine.dispose()
    own = build_engine(
        postgres_url + "?options=-c%20statement_timeout%3D7000", "muxly_x", statement_timeout=60
    )
    try:
        with own.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "7s"
            assert conn.execute(text("SHOW search_path")).scalar_one() == "muxly_x,public"
    finally:
        own.dispose()


def test_server_that_never_answers_fails_within_the_connect_timeout(
    silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__MUXLY__DB_CONNECT_TIMEOUT", "2")  # libpq's smallest timeout
    engine = build_engine(f"postgresql+psycopg2://muxly@127.0.0.1:{silent_server}/muxly")
    started = time.monotonic()
    try:
        with pytest.raises(OperationalError, match="timeout"), engine.connect():
            pass
    finally:
        engine.dispose()
    elapsed = time.monotonic() - started
    assert 1.5 < elapsed < 8, elapsed


def test_sqlite_writer_waits_for_a_locked_file_up_to_the_statement_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    path = tmp_path / "muxly.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setenv("AIRFLOW__MUXLY__DB_STATEMENT_TIMEOUT", "1")
    engine = build_engine(f"sqlite:///{path}")
    started = time.monotonic()
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA busy_timeout")).scalar_one() == 1000
            with pytest.raises(OperationalError, match="locked"):
                conn.execute(text("INSERT INTO t VALUES (1)"))
    finally:
        engine.dispose()
        holder.close()
    assert 0.8 < time.monotonic() - started < 5
