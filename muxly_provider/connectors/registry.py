"""Connector types keyed by ``connector_type``; ``plugin:<name>`` entries come from ``muxly.connectors``.

A package adds a connector by subclassing :class:`~muxly_provider.connectors.base.MuxlyConnector` and declaring
an entry point in the group ``muxly.connectors``, for example in its ``pyproject.toml``::

    [project.entry-points."muxly.connectors"]
    crm = "my_package.connector:CrmConnector"

Connectors of ``connector_type`` ``plugin:crm`` then run with that class.
"""

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
    "database": "muxly_provider.connectors.database:DatabaseConnector",
    "file": "muxly_provider.connectors.file:FileConnector",
    "bigquery": "muxly_provider.connectors.bigquery:BigQueryConnector",
    "ga4": "muxly_provider.connectors.ga4:Ga4Connector",
    "hubspot": "muxly_provider.connectors.hubspot:HubSpotConnector",
    "webhook": "muxly_provider.connectors.webhook:WebhookConnector",
}


_DEFAULT_ACTIONS = frozenset({"sync", "export", "pipeline"})
_BUILTIN_ACTIONS: dict[str, frozenset[str]] = {
    "database": _DEFAULT_ACTIONS | {"query"},
    "bigquery": _DEFAULT_ACTIONS | {"query"},
}
"""Actions of the built-in types, known without importing them (the DAG factory checks them at every parse;
importing the HTTP and Google clients there would dominate the parse). A test keeps this table equal to the
classes' ``supported_actions``."""


def supported_actions(connector_type: str) -> frozenset[str]:
    """The job actions ``connector_type`` can run (imports only plugin classes).

    :raises MuxlyConnectorError: for an unknown type
    """
    if connector_type in _BUILTIN:
        return _BUILTIN_ACTIONS.get(connector_type, _DEFAULT_ACTIONS)
    return get_connector_class(connector_type).supported_actions


def plugin_names() -> list[str]:
    """The names of the installed connector plugins (``plugin:<name>`` types), sorted."""
    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


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
                try:
                    cls = ep.load()
                except Exception as exc:
                    raise MuxlyConnectorError(
                        f"connector plugin {name!r} ({ep.value}) failed to import: {type(exc).__name__}: {exc}"
                    ) from exc
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
