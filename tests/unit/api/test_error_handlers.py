"""The API's answer when Muxly's database setting cannot work on the deployment."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from muxly_provider.api.errors import install_error_handlers
from muxly_provider.exceptions import MuxlyDatabaseSettingError


def test_database_setting_error_is_503_naming_the_setting_without_the_host() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/x")
    def _x() -> None:
        raise MuxlyDatabaseSettingError(
            "Airflow runs on postgresql+psycopg2://airflow:***@db.internal/airflow: set [muxly] sql_alchemy_conn"
        )

    answer = TestClient(app, raise_server_exceptions=False).get("/x")
    assert answer.status_code == 503
    error = answer.json()["error"]
    assert error["code"] == "database_not_configured"
    assert "[muxly] sql_alchemy_conn" in error["message"]
    assert "db.internal" not in answer.text
