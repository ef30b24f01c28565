"""Fixtures of the browser tests (defined in :mod:`tests.browser.ui_live`): ``airflow_ui`` (one live Airflow with
Muxly for the session), ``browser`` (headless Debian Chromium) and ``signed_in`` (a page signed in as a user)."""

from __future__ import annotations

from tests.browser.ui_live import airflow_ui, browser, signed_in

__all__ = ["airflow_ui", "browser", "signed_in"]
