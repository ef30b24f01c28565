"""Muxly's pages in Airflow's UI, in headless Chromium against a live api-server (issue 14, item 5).

The forms of the resource pages (connector to running job) are tested in ``test_ui_resources.py``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Locator

from tests.browser.ui_live import CHROMIUM, NO_CHROMIUM, SEEDED_JOB, SEEDED_NAME, BrowserLive, UiSession

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=NO_CHROMIUM)

# The tabs of Muxly's shell (ui/src/App.tsx PAGES): title, sub-path, screenshot name.
TABS = [
    ("Overview", "", "overview"),
    ("Jobs", "jobs", "jobs"),
    ("Connectors", "connectors", "connectors"),
    ("Destinations", "destinations", "destinations"),
    ("Rules", "rules", "rules"),
    ("Routes", "routes", "routes"),
    ("Webhooks", "webhooks", "webhooks"),
    ("Tester", "tester", "tester"),
    ("Dead letters", "dead-letters", "dead-letters"),
    ("Import / export", "import-export", "import-export"),
]

SignedIn = Callable[[str], UiSession]


def test_airflow_login_works(signed_in: SignedIn) -> None:
    ui = signed_in("admin")
    assert "/auth/login" not in ui.page.url
    ui.page.get_by_role("link", name="Muxly").first.wait_for(timeout=30_000)


def test_muxly_nav_entry_opens_the_muxly_page(signed_in: SignedIn) -> None:
    ui = signed_in("admin")
    ui.page.get_by_role("link", name="Muxly").first.click()
    ui.page.get_by_role("heading", name="Muxly", exact=True).wait_for(timeout=30_000)
    assert ui.page.url.rstrip("/").endswith("/plugin/muxly")
    ui.page.get_by_test_id("muxly-user").get_by_text("admin").first.wait_for()


def test_every_tab_opens(signed_in: SignedIn) -> None:
    ui = signed_in("admin")
    ui.open_muxly()
    nav = ui.page.locator("nav").filter(has=ui.page.get_by_role("link", name="Dead letters"))
    for title, sub_path, shot in TABS:
        nav.get_by_role("link", name=title, exact=True).click()
        ui.page.wait_for_url(re.compile(rf"/plugin/muxly/?{re.escape(sub_path)}$"))
        ui.page.wait_for_load_state("networkidle")
        assert ui.page.get_by_text("Not found").count() == 0
        ui.screenshot(shot)


def test_dag_tab_shows_the_muxly_job(signed_in: SignedIn) -> None:
    ui = signed_in("admin")
    ui.page.goto(f"{ui.base_url}/dags/muxly__{SEEDED_JOB}")
    ui.page.get_by_role("link", name="Muxly job").first.click()
    ui.page.wait_for_url(re.compile(r"/dags/muxly__ui_seeded/plugin/muxly-job"))
    ui.page.get_by_text(SEEDED_NAME).first.wait_for(timeout=30_000)
    ui.page.wait_for_load_state("networkidle")
    assert ui.page.get_by_text("not a Muxly job").count() == 0
    ui.screenshot("dag-tab")


def _seeded_row(ui: UiSession) -> Locator:
    return ui.page.get_by_test_id("job-row").filter(has_text=SEEDED_NAME)


def _job_row_buttons(ui: UiSession) -> dict[str, int]:
    ui.open_muxly("jobs")
    _seeded_row(ui).wait_for(timeout=30_000)
    ui.page.wait_for_load_state("networkidle")
    return {
        name: _seeded_row(ui).get_by_role("button", name=name, exact=True).count()
        for name in ("Run", "Enable", "Disable")
    }


def test_viewer_sees_no_action_buttons_on_jobs(signed_in: SignedIn) -> None:
    viewer = _job_row_buttons(signed_in("viewer"))
    assert viewer == {"Run": 0, "Enable": 0, "Disable": 0}


def test_admin_sees_action_buttons_on_jobs(signed_in: SignedIn) -> None:
    admin = _job_row_buttons(signed_in("admin"))
    assert admin["Run"] == 1
    assert admin["Enable"] + admin["Disable"] == 1


def _finished_execution(airflow_ui: BrowserLive, job_id: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        try:
            page = airflow_ui.call("GET", f"/muxly/api/v1/jobs/{job_id}/executions?limit=1")
        except OSError:  # a busy api-server (CI machines share their cores): ask again
            return None
        items = page.get("items", page) if isinstance(page, dict) else page
        return items[0] if items and items[0]["status"] in ("success", "failed") else None

    return dict(airflow_ui.live.wait_for("the run to finish", finished, timeout=120))


def test_run_now_from_jobs_page_shows_the_execution_counts(
    signed_in: SignedIn, airflow_ui: BrowserLive
) -> None:
    ui = signed_in("admin")
    ui.open_muxly("jobs")
    _seeded_row(ui).wait_for(timeout=30_000)
    _seeded_row(ui).get_by_role("button", name="Run", exact=True).click()
    panel = ui.page.get_by_test_id("run-panel")
    panel.get_by_role("button", name="Run", exact=True).click()
    panel.get_by_text("Queued").wait_for(timeout=30_000)
    assert _finished_execution(airflow_ui, SEEDED_JOB)["status"] == "success"
    # The counts as the API lists them for the Jobs page (extracted / delivered / dead-lettered).
    last = airflow_ui.call("GET", f"/muxly/api/v1/jobs?q={SEEDED_JOB}")["items"][0]["last_execution"]
    assert last["records_extracted"] > 0, last
    counts = f"{last['records_extracted']} / {last['records_delivered']} / {last['records_dead_lettered']}"
    deadline = time.monotonic() + 30
    while ui.page.get_by_text(counts, exact=True).count() == 0:
        assert time.monotonic() < deadline, f"the Jobs page never showed {counts}"
        ui.page.reload()
        _seeded_row(ui).wait_for(timeout=30_000)
        ui.page.wait_for_timeout(1000)
    ui.screenshot("jobs-after-run")
