"""Connector types keyed by ``connector_type``; ``plugin:<name>`` entries come from ``muxly.connectors``."""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points

from muxly_provider.connectors.base import MuxlyConnector
from muxly_provider.exceptions import MuxlyConnectorError

PLUGIN_PREFIX = "plugin:"
ENTRY_POINT_GROUP = "muxly.connectors"

# Built-in types, imported only when a job of that type runs.
_BUILTIN: dict[str, str] = {
    "api": "muxly_provider.connectors.api:ApiConnector",
}


def builtin_types() -> frozenset[str]:
    """Connector types this version of Muxly can run."""
    return frozenset(_BUILTIN)


def get_connector_class(connector_type: str) -> type[MuxlyConnector]:
    """The class implementing ``connector_type``.

    :raises MuxlyConnectorError: when no built-in type or installed plugin has that name
    """
    if connector_type.startswith(PLUGIN_PREFIX):
        name = connector_type[len(PLUGIN_PREFIX) :]
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name == name:
                cls = ep.load()
                if isinstance(cls, type) and issubclass(cls, MuxlyConnector):
                    return cls
                raise MuxlyConnectorError(
                    f"entry point {name!r} of {ENTRY_POINT_GROUP} is not a MuxlyConnector"
                )
        raise MuxlyConnectorError(f"no connector plugin named {name!r} is installed ({ENTRY_POINT_GROUP})")
    target = _BUILTIN.get(connector_type)
    if target is None:
        raise MuxlyConnectorError(
            f"connector type {connector_type!r} is not supported; known: {', '.join(sorted(_BUILTIN))}"
        )
    module_name, _, attr = target.partition(":")
    cls = getattr(import_module(module_name), attr)
    if not (isinstance(cls, type) and issubclass(cls, MuxlyConnector)):
        raise TypeError(f"{target} is not a MuxlyConnector")
    return cls
