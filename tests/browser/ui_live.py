"""The browser tests' fixtures and helpers: a live Airflow (``airflow standalone``: api-server, scheduler, dag-processor, triggerer; LocalExecutor, SQLite)
with Muxly's plugin, signed in through Airflow's own login page from headless Chromium (Debian's package, driven by
Playwright's Python client: Playwright cannot download its own browsers here).

Airflow's SimpleAuthManager has two users with known passwords: ``admin`` (Airflow admin, linked to a Muxly user
with the ``admin`` role) and ``viewer`` (Airflow viewer, linked to a Muxly ``viewer``). One Airflow and one browser
serve the whole session; each test gets a fresh browser context (its own cookies) through :func:`signed_in`.

``MUXLY_UI_SCREENSHOTS=1`` saves a screenshot of each page into ``docs/ui/<page>.png`` (off by default, so a test
run does not change the tree).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy.orm import Session

from examples.sample_api import make_server, start_in_thread
from tests.airflow_helpers import DAGS_DIR
from tests.db_helpers import insert_row
from tests.integration.live.test_live_airflow import AIRFLOW, Live, _free_port, standalone_env

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "ui"
PASSWORDS = {"admin": "browser-admin-password", "viewer": "browser-viewer-password"}
SEEDED_JOB = "ui_seeded"
SEEDED_NAME = "Seeded for the UI tests"
NO_CHROMIUM = f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium) to run them"


@dataclass
class BrowserLive:
    """The running Airflow (:class:`Live` of the live tests) and what the browser tests add to it."""

    live: Live
    home: Path
    sample_api_url: str

    @property
    def base_url(self) -> str:
        return self.live.base_url

    def token(self, user: str = "admin") -> str:
        """An Airflow JWT of ``user`` (``POST /auth/token``; Muxly's API accepts it)."""
        request = urllib.request.Request(
            f"{self.base_url}/auth/token",
            data=json.dumps({"username": user, "password": PASSWORDS[user]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return str(json.loads(answer.read())["access_token"])

    def call(self, method: str, path: str, body: Any = None, user: str = "admin") -> Any:
        """``method path`` on the api-server as ``user`` (``/api/v2/...`` or ``/muxly/api/v1/...``)."""
        request = urllib.request.Request(
            f"{self.base_url}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token(user)}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read() or b"null")

    def dag_exists(self, dag_id: str) -> bool:
        try:
            self.call("GET", f"/api/v2/dags/{dag_id}")
        except urllib.error.HTTPError:
            return False
        return True


def _browser_env(home: Path, api_port: int, fernet: str) -> dict[str, str]:
    env = standalone_env(home, DAGS_DIR, api_port, fernet)
    passwords = home / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps(PASSWORDS))
    env.update(
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="False",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin,viewer:viewer",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(passwords),
        AIRFLOW__API_AUTH__JWT_SECRET="muxly-browser-tests-jwt-secret-" + "0" * 40,
        # Both test users are linked to Muxly users (their roles win); an empty value would refuse every Airflow
        # token, linked or not.
        AIRFLOW__MUXLY__AIRFLOW_USER_ROLE="viewer",
    )
    return env


def _seed(env: dict[str, str], sample_api_url: str) -> None:
    from muxly_provider.auth.users import create_user
    from muxly_provider.db.engine import build_engine
    from muxly_provider.db.migrate import upgrade

    url = env["AIRFLOW__MUXLY__SQL_ALCHEMY_CONN"]
    upgrade(url)
    engine = build_engine(url)
    try:
        with Session(engine) as session, session.begin():
            for user in PASSWORDS:
                create_user(
                    session,
                    username=user,
                    email=f"{user}@example.com",
                    password=None,
                    roles=[user],
                    auth_provider="airflow",
                    external_id=user,
                )
        insert_row(
            engine,
            "connectors",
            id="ui_sales",
            name="Sales API",
            connector_type="api",
            auth_settings={"auth_type": "none"},
            connection_settings={"base_url": sample_api_url, "metrics_path": "data.records"},
        )
        insert_row(
            engine,
            "destinations",
            id="ui_file",
            name="Sales file",
            destination_type="file",
            config={"output_dir": "ui-out", "file_format": "jsonl"},
        )
        insert_row(
            engine,
            "scheduler_jobs",
            id=SEEDED_JOB,
            name=SEEDED_NAME,
            job_type="manual",
            connector_id="ui_sales",
            action_type="export",
            max_retries=0,
            action_params={"destination_ids": ["ui_file"]},
        )
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def airflow_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserLive]:
    """``airflow standalone`` with Muxly, the two users and one seeded job whose DAG is parsed."""
    from cryptography.fernet import Fernet

    from muxly_provider.db.engine import build_engine

    home = tmp_path_factory.mktemp("browser-airflow")
    api_port = _free_port()
    env = _browser_env(home, api_port, Fernet.generate_key().decode())
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    server = make_server()
    start_in_thread(server)
    sample_api_url = f"http://127.0.0.1:{server.server_address[1]}/api/v1/sales"
    _seed(env, sample_api_url)
    engine = build_engine(env["AIRFLOW__MUXLY__SQL_ALCHEMY_CONN"])
    log = open(home / "standalone.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [AIRFLOW, "standalone"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    ui = BrowserLive(
        Live(f"http://127.0.0.1:{api_port}", env, engine, api_port, process), home, sample_api_url
    )
    try:

        def seeded_dag() -> bool:
            try:
                return ui.dag_exists(f"muxly__{SEEDED_JOB}")
            except OSError:
                return False

        ui.live.wait_for("the api-server and the seeded job's DAG", seeded_dag, timeout=180)
        yield ui
    except BaseException:
        log.flush()
        print((home / "standalone.log").read_text(errors="replace")[-6000:])
        raise
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        server.shutdown()
        engine.dispose()
        log.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium, one for the session; the browser tests run last (see tests/conftest.py), since
    Playwright's sync API keeps an event loop running in the main thread while it is open."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class UiSession:
    """A signed-in page, the console errors it logged, and helpers to open Muxly's pages."""

    page: Page
    base_url: str
    errors: list[str] = field(default_factory=list)

    def open_muxly(self, sub_path: str = "") -> None:
        """Open ``/plugin/muxly/<sub_path>`` and wait for Muxly's shell."""
        self.page.goto(f"{self.base_url}/plugin/muxly/{sub_path}".rstrip("/"))
        self.page.get_by_role("heading", name="Muxly", exact=True).wait_for(timeout=30_000)

    def screenshot(self, name: str) -> None:
        """``docs/ui/<name>.png`` when ``MUXLY_UI_SCREENSHOTS=1``."""
        if os.environ.get("MUXLY_UI_SCREENSHOTS") == "1":
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    def assert_no_console_errors(self) -> None:
        assert not self.errors, "browser console errors:\n" + "\n".join(self.errors)


def _sign_in(page: Page, base_url: str, user: str) -> None:
    """Airflow's own login page (SimpleAuthManager), as a person signs in."""
    page.goto(f"{base_url}/")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(PASSWORDS[user])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/login" not in url, timeout=30_000)


@pytest.fixture
def signed_in(airflow_ui: BrowserLive, browser: Browser) -> Iterator[Callable[[str], UiSession]]:
    """``signed_in(user)``: a fresh browser context signed in as ``user``; the test fails on console errors."""
    sessions: list[UiSession] = []
    contexts = []

    def open_as(user: str) -> UiSession:
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        contexts.append(context)
        page = context.new_page()
        _sign_in(page, airflow_ui.base_url, user)
        session = UiSession(page, airflow_ui.base_url)

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                session.errors.append(f"{page.url}: {message.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: session.errors.append(f"{page.url}: uncaught {error}"))
        sessions.append(session)
        return session

    try:
        yield open_as
        for session in sessions:
            session.assert_no_console_errors()
    finally:
        for context in contexts:
            context.close()
