"""Muxly's UI in Airflow's api-server: the bundle is served as JavaScript, and /api/v2/plugins lists the pages."""

from __future__ import annotations

from conftest import airflow_token, bearer
from fastapi.testclient import TestClient


def test_muxly_app_serves_the_bundle_as_javascript(api_client: TestClient) -> None:
    response = api_client.get("/ui/static/muxly-ui.js")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] in ("text/javascript", "application/javascript")
    assert b"AirflowPlugin" in response.content
    icon = api_client.get("/ui/static/muxly.svg")
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")
    assert api_client.get("/ui/static/../app.py").status_code == 404


def test_airflow_lists_the_react_apps_and_serves_their_bundle(airflow_client: TestClient) -> None:
    token = airflow_token("ui")
    response = airflow_client.get("/api/v2/plugins", headers=bearer(token), params={"limit": 100})
    assert response.status_code == 200, response.text
    plugins = {plugin["name"]: plugin for plugin in response.json()["plugins"]}
    assert "muxly" in plugins, "Airflow dropped the plugin: a react_apps entry does not validate"
    apps = {app["name"]: app for app in plugins["muxly"]["react_apps"]}
    assert apps["Muxly"]["destination"] == "nav"
    assert apps["Muxly job"]["destination"] == "dag"
    bundle = airflow_client.get("/" + apps["Muxly"]["bundle_url"])
    assert bundle.status_code == 200
    assert "javascript" in bundle.headers["content-type"]
