"""The plugin's ``react_apps`` as Airflow 3.3 validates them, and the shipped UI bundle they point at."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from airflow.api_fastapi.core_api.datamodels.plugins import PluginResponse, ReactAppResponse

from muxly_provider.api.app import UI_STATIC_DIR
from muxly_provider.plugins.muxly_plugin import UI_BUNDLE_URL, UI_ICON_URL, MuxlyPlugin

BUNDLE = UI_STATIC_DIR / "muxly-ui.js"
_HOST_MEMBERS = [
    "createContext",
    "useContext",
    "useState",
    "useEffect",
    "useRef",
    "useMemo",
    "useCallback",
    "useLayoutEffect",
    "useSyncExternalStore",
    "useReducer",
    "forwardRef",
    "memo",
    "Fragment",
    "createElement",
    "useId",
    "Children",
    "cloneElement",
    "isValidElement",
    "startTransition",
    "useInsertionEffect",
    "useTransition",
    "useDeferredValue",
    "flushSync",
    "createPortal",
]


@pytest.mark.parametrize("app", MuxlyPlugin.react_apps, ids=lambda app: str(app["name"]))
def test_each_react_app_is_valid_for_airflow(app: dict[str, object]) -> None:
    # extra="allow" would accept a misspelt key silently: every key must be one Airflow knows.
    validated = ReactAppResponse.model_validate(app)
    assert set(app) <= set(ReactAppResponse.model_fields)
    assert validated.url_route


def test_react_apps_are_the_nav_entry_and_the_dag_tab() -> None:
    apps = {app["destination"]: app for app in MuxlyPlugin.react_apps}
    assert apps["nav"]["name"] == "Muxly"
    assert apps["nav"]["url_route"] == "muxly"
    assert apps["dag"]["name"] == "Muxly job"
    assert apps["dag"]["url_route"] == "muxly-job"
    assert len({app["url_route"] for app in MuxlyPlugin.react_apps}) == len(MuxlyPlugin.react_apps)


def test_the_whole_plugin_validates() -> None:
    # Airflow drops the whole plugin from /api/v2/plugins when one entry fails this model.
    PluginResponse.model_validate(
        {
            "name": MuxlyPlugin.name,
            "macros": [],
            "flask_blueprints": [],
            "fastapi_apps": [],
            "fastapi_root_middlewares": [],
            "external_views": [],
            "react_apps": MuxlyPlugin.react_apps,
            "appbuilder_views": [],
            "appbuilder_menu_items": [],
            "global_operator_extra_links": [],
            "operator_extra_links": [],
            "source": "muxly",
            "listeners": [],
            "timetables": [],
        }
    )


def test_urls_point_into_the_static_dir() -> None:
    prefix = "muxly/ui/static/"
    for url in (UI_BUNDLE_URL, UI_ICON_URL):
        assert url.startswith(prefix)
        assert (UI_STATIC_DIR / url.removeprefix(prefix)).is_file()


def test_the_bundle_is_umd_with_the_host_globals() -> None:
    text = BUNDLE.read_text(encoding="utf-8")
    assert "AirflowPlugin" in text
    for host_global in ("React", "ReactDOM", "ReactJSXRuntime", "ReactRouterDOM", "ChakraUI"):
        assert f".{host_global}" in text, host_global


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_evaluating_the_bundle_sets_the_component_under_every_name(tmp_path: Path) -> None:
    # As Airflow's loader does: clear AirflowPlugin, evaluate the bundle as an ES module, read the globals.
    module = tmp_path / "bundle.mjs"
    module.write_text(BUNDLE.read_text(encoding="utf-8"), encoding="utf-8")
    # The host's libraries are stood in for by namespaces whose every member is a stub that any property access
    # or call returns again (the UMD wrapper copies the namespaces' own keys, hence the listed names).
    script = f"""
    const stub = new Proxy(function () {{}}, {{
      get: (target, key) => (key === Symbol.toPrimitive ? () => "" : key === "prototype" ? {{}} : stub),
      apply: () => stub,
      construct: () => stub,
    }});
    const names = {json.dumps(_HOST_MEMBERS)};
    const namespace = new Proxy({{}}, {{
      get: () => stub,
      ownKeys: () => names,
      getOwnPropertyDescriptor: () => ({{ value: stub, enumerable: true, configurable: true, writable: true }}),
    }});
    for (const name of ["React", "ReactDOM", "ReactJSXRuntime", "ReactRouterDOM", "ChakraUI", "EmotionReact"])
      globalThis[name] = namespace;
    globalThis.AirflowPlugin = undefined;
    await import({json.dumps(module.as_uri())});
    console.log(JSON.stringify([typeof globalThis.AirflowPlugin, typeof globalThis["Muxly"],
      typeof globalThis["Muxly job"], globalThis.AirflowPlugin === globalThis["Muxly job"]]));
    """
    result = subprocess.run(
        ["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == ["function", "function", "function", True]
