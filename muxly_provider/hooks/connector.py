"""``MuxlyConnectorHook``: the ``muxly`` Airflow connection type, a connector source kept in Airflow.

A ``muxly`` connection either names a Muxly connector row (``extra``: ``{"connector_id": "sales"}``) or
describes one inline (``extra``: ``{"connector_type": "api", "connection_settings": {...}, "auth_settings":
{...}}``). Inline, ``host`` fills an ``api`` connector's ``base_url`` when it has none, and without
``auth_settings`` the password is a bearer token (basic auth with a login). The test button of Airflow's
connection UI runs the connector type's connection test.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from muxly_provider.connectors.base import ConnectorContext
from muxly_provider.exceptions import MuxlyError


class MuxlyConnectorHook(BaseHook):
    """Check a Muxly connector stored in, or referenced by, an Airflow connection.

    :param muxly_conn_id: the id of a connection of type ``muxly``
    """

    conn_name_attr = "muxly_conn_id"
    default_conn_name = "muxly_default"
    conn_type = "muxly"
    hook_name = "Muxly connector"

    def __init__(self, muxly_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.muxly_conn_id = muxly_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabel the connection form for Muxly connectors."""
        return {
            "hidden_fields": ["schema", "port"],
            "relabeling": {"host": "Base URL (api connectors)", "password": "Token or password"},
            "placeholders": {
                "extra": '{"connector_id": "sales"} or {"connector_type": "api", "connection_settings": '
                '{"base_url": "https://api.example.com/v1/orders"}}',
            },
        }

    def get_conn(self) -> ConnectorContext:
        """The connector described by the connection."""
        return context_from_connection(self.get_connection(self.muxly_conn_id))

    def test_connection(self) -> tuple[bool, str]:
        """Run the connector's connection test (Airflow's connection UI calls this)."""
        from muxly_provider.connectors.check import check_connector

        try:
            context = self.get_conn()
        except MuxlyError as exc:
            return False, str(exc)
        result = check_connector(context)
        return result.ok, result.message


def context_from_connection(conn: Any) -> ConnectorContext:
    """A :class:`ConnectorContext` from a ``muxly`` Airflow connection (see the module docstring)."""
    from muxly_provider.exceptions import MuxlyConnectorError

    extra = conn.extra_dejson or {}
    if extra.get("connector_id"):
        from muxly_provider.connectors.check import load_connector_context

        return load_connector_context(str(extra["connector_id"]))
    connector_type = extra.get("connector_type")
    if not connector_type:
        raise MuxlyConnectorError(
            f"connection {conn.conn_id!r}: extra needs 'connector_id' or 'connector_type' (with connection_settings)"
        )
    settings = dict(extra.get("connection_settings") or {})
    if connector_type == "api" and conn.host and not settings.get("base_url"):
        settings["base_url"] = conn.host
    auth = extra.get("auth_settings")
    if not auth:
        if conn.password and conn.login:
            auth = {"auth_type": "basic", "params": {"username": conn.login, "password": conn.password}}
        elif conn.password:
            auth = {"auth_type": "bearer", "params": {"token": conn.password}}
        else:
            auth = {"auth_type": "none"}
    return ConnectorContext(
        id=str(conn.conn_id),
        name=str(conn.conn_id),
        connector_type=str(connector_type),
        auth=auth,
        settings=settings,
    )
