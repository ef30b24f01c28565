"""The Preview panel of the Job detail page (issue 15, item 6) in headless Chromium against a live api-server: an
admin previews the seeded job from its connector, a viewer (no ``connectors:execute``) from pasted records; no
execution is recorded."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.browser.ui_live import CHROMIUM, NO_CHROMIUM, SEEDED_JOB, BrowserLive, UiSession

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=NO_CHROMIUM)

SignedIn = Callable[[str], UiSession]


def _executions(airflow_ui: BrowserLive) -> int:
    return int(airflow_ui.call("GET", f"/muxly/api/v1/jobs/{SEEDED_JOB}/executions?limit=1")["total"])


def test_admin_previews_the_job_from_its_connector(signed_in: SignedIn, airflow_ui: BrowserLive) -> None:
    before = _executions(airflow_ui)
    ui = signed_in("admin")
    ui.open_muxly(f"jobs/{SEEDED_JOB}")
    panel = ui.page.get_by_test_id("job-preview")
    panel.wait_for(timeout=30_000)
    panel.get_by_label("preview limit").fill("3")
    panel.get_by_test_id("preview-run").click()
    result = panel.get_by_test_id("preview-result")
    result.wait_for(timeout=60_000)
    assert "3 record(s) from the connector" in result.inner_text()
    destination = panel.locator('[data-testid="preview-destination"][data-destination="ui_file"]')
    assert "3 records" in destination.inner_text()
    rendered = destination.get_by_test_id("preview-rendered").inner_text()
    assert len(rendered.strip().splitlines()) == 3  # the file's three JSONL lines
    assert "Nothing was written" in result.inner_text()
    panel.evaluate("element => element.scrollIntoView({block: 'start'})")
    ui.screenshot("job-preview")
    assert _executions(airflow_ui) == before
    ui.assert_no_console_errors()


def test_viewer_previews_pasted_records(signed_in: SignedIn, airflow_ui: BrowserLive) -> None:
    ui = signed_in("viewer")
    ui.open_muxly(f"jobs/{SEEDED_JOB}")
    panel = ui.page.get_by_test_id("job-preview")
    panel.wait_for(timeout=30_000)
    assert panel.get_by_role("button", name="From the connector").is_disabled()
    panel.get_by_label("preview records").fill('{"order": 1, "amount": 5}\n{"order": 2, "amount": 7}')
    panel.get_by_test_id("preview-run").click()
    result = panel.get_by_test_id("preview-result")
    result.wait_for(timeout=60_000)
    assert "2 given record(s)" in result.inner_text()
    destination = panel.locator('[data-testid="preview-destination"][data-destination="ui_file"]')
    assert '{"order": 2, "amount": 7}' in destination.get_by_test_id("preview-rendered").inner_text()
    ui.assert_no_console_errors()
