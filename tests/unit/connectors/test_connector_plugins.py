"""Plugin connectors come from the ``muxly.connectors`` entry points of installed distributions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from muxly_provider.connectors.base import ConnectorContext, MuxlyConnector
from muxly_provider.connectors.registry import get_connector_class, plugin_names
from muxly_provider.exceptions import MuxlyConnectorError
from tests.plugin_pkg.plugin_install import install_plugin, uninstall_plugin


@pytest.fixture
def plugin(tmp_path: Path) -> Iterator[Path]:
    target = install_plugin(tmp_path / "site")
    yield target
    uninstall_plugin(target)


def test_plugin_connector_is_found_and_runs(plugin: Path) -> None:
    assert {"counter", "wrong", "broken"} <= set(plugin_names())
    cls = get_connector_class("plugin:counter")
    assert issubclass(cls, MuxlyConnector) and cls.__module__ == "muxly_counter_plugin"
    connector = cls(
        ConnectorContext(
            id="p", name="P", connector_type="plugin:counter", settings={"count": 5, "prefix": "x"}
        ),
        batch_size=2,
    )
    assert [len(b) for b in connector.fetch({"start": 10})] == [2, 2, 1]
    assert "fetched 2 record(s)" in connector.test_connection()


def test_bad_plugins_are_clear_errors(plugin: Path) -> None:
    with pytest.raises(MuxlyConnectorError, match=r"'wrong' of muxly.connectors is not a MuxlyConnector"):
        get_connector_class("plugin:wrong")
    with pytest.raises(MuxlyConnectorError, match=r"plugin 'broken'.*failed to import: ModuleNotFoundError"):
        get_connector_class("plugin:broken")


def test_plugin_gone_when_uninstalled(tmp_path: Path) -> None:
    target = install_plugin(tmp_path / "site")
    uninstall_plugin(target)
    with pytest.raises(MuxlyConnectorError, match="no connector plugin named 'counter'"):
        get_connector_class("plugin:counter")


def test_builtin_action_table_matches_the_classes() -> None:
    from muxly_provider.connectors import registry

    for connector_type in registry.builtin_types():
        cls = registry.get_connector_class(connector_type)
        assert registry.supported_actions(connector_type) == cls.supported_actions, connector_type
