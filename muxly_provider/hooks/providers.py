"""The Airflow providers' hooks behind Muxly's email, slack, s3 and database destinations and its database
connector, on the Airflow connections users already keep.

Each destination is configured either by ``conn_id`` (an Airflow connection: nothing else is needed to reach
the server) or by the inline options of the original Muxly (``smtp_host``, ``webhook_url``, ``credentials``,
``connection_string``). Both paths end in the same provider hook:

* ``email``: the SMTP provider's ``SmtpHook`` (``airflow-provider-muxly[smtp]``);
* ``slack``: the Slack provider's ``SlackWebhookHook`` (``[slack]``);
* ``s3``: the Amazon provider's ``S3Hook`` (``[amazon]``, the same as ``[s3]``);
* ``database`` (destination and connector): the common-sql ``DbApiHook`` of the connection's type and its
  SQLAlchemy engine (``[common-sql]`` with ``[postgres]``, ``[mysql]`` or ``[sqlite]`` for that type's hook).

Inline options become an in-memory Airflow connection (:func:`make_connection`) that the hook reads instead
of looking one up (:func:`on_connection`), so the hook's own behaviour (TLS, timeouts, extras) is the same
for both. A connection named by ``conn_id`` is first checked against ``[muxly] allowed_conn_ids``
(:func:`get_connection`). A missing provider fails with the extra to install (:class:`MuxlyProviderMissingError`).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from muxly_provider.exceptions import MuxlyError

if TYPE_CHECKING:
    import requests
    from airflow.sdk import Connection
    from sqlalchemy.engine import Engine

DISTRIBUTION = "airflow-provider-muxly"

HOOKS: dict[str, tuple[str, str, str]] = {
    "smtp": ("airflow.providers.smtp.hooks.smtp", "smtp", "apache-airflow-providers-smtp"),
    "slack": ("airflow.providers.slack.hooks.slack_webhook", "slack", "apache-airflow-providers-slack"),
    "s3": ("airflow.providers.amazon.aws.hooks.s3", "amazon", "apache-airflow-providers-amazon"),
    "common-sql": (
        "airflow.providers.common.sql.hooks.sql",
        "common-sql",
        "apache-airflow-providers-common-sql",
    ),
}
"""What Muxly uses -> (the hook's module, Muxly's extra, the provider's distribution)."""

SQL_HOOKS: dict[str, tuple[str, str, str]] = {
    "postgres": (
        "airflow.providers.postgres.hooks.postgres",
        "postgres",
        "apache-airflow-providers-postgres",
    ),
    "mysql": ("airflow.providers.mysql.hooks.mysql", "mysql", "apache-airflow-providers-mysql"),
    "sqlite": ("airflow.providers.sqlite.hooks.sqlite", "sqlite", "apache-airflow-providers-sqlite"),
}
"""Connection types of the databases Muxly documents -> (hook module, Muxly's extra, the provider)."""

_HookT = TypeVar("_HookT")


class MuxlyProviderMissingError(MuxlyError):
    """An Airflow provider Muxly needs here is not installed; the message names the extra to install."""

    def __init__(self, what: str, extra: str, distribution: str) -> None:
        self.extra = extra
        self.distribution = distribution
        super().__init__(
            f"{what} needs the Airflow provider {distribution}: pip install '{DISTRIBUTION}[{extra}]'"
        )


class MuxlyConnectionError(MuxlyError):
    """An Airflow connection named by ``conn_id`` cannot be used: missing, refused or of the wrong type.

    :param message: what is wrong, naming the field and the connection (never its secrets)
    :param permanent: whether trying again cannot help (refused by ``[muxly] allowed_conn_ids``, wrong type)
    """

    def __init__(self, message: str, *, permanent: bool = True) -> None:
        super().__init__(message)
        self.permanent = permanent


def import_module(kind: str, what: str) -> Any:
    """The module of the hook of ``kind`` (a key of :data:`HOOKS`).

    :param what: who needs it, for the error (``destination 'mail' (email)``)
    :raises MuxlyProviderMissingError: naming the extra to install
    """
    module, extra, distribution = HOOKS[kind]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MuxlyProviderMissingError(what, extra, distribution) from None


def get_connection(conn_id: str, field: str = "conn_id") -> Connection:
    """The Airflow connection ``conn_id``, once ``[muxly] allowed_conn_ids`` allows it.

    :param conn_id: the connection id a configuration names
    :param field: the setting that names it (for errors)
    :raises MuxlyConnectionError: when the allow-list refuses it (permanent) or it is not defined here
    """
    from airflow.sdk import BaseHook

    from muxly_provider.security.connections import conn_id_reason

    reason = conn_id_reason(conn_id)
    if reason is not None:
        raise MuxlyConnectionError(f"{field}: {reason}, not {conn_id!r}")
    try:
        return BaseHook.get_connection(conn_id)
    except Exception as exc:
        raise MuxlyConnectionError(
            f"{field}: Airflow connection {conn_id!r} not found ({type(exc).__name__})", permanent=False
        ) from None


def make_connection(
    conn_id: str,
    conn_type: str,
    *,
    host: str | None = None,
    port: int | None = None,
    login: str | None = None,
    password: str | None = None,
    schema: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Connection:
    """An in-memory Airflow connection (inline options, or a stored connection with overrides).

    :param conn_id: a name for logs and errors (the connection is never stored)
    """
    from airflow.sdk import Connection

    return Connection(
        conn_id=conn_id,
        conn_type=conn_type,
        host=host,
        port=port,
        login=login,
        password=password,
        schema=schema,
        extra=json.dumps(dict(extra or {})),
    )


def on_connection(hook_class: type[_HookT], connection: Connection, /, **kwargs: Any) -> _HookT:
    """A ``hook_class`` hook that reads ``connection`` instead of looking its id up.

    Airflow's hooks read their connection through ``get_connection`` (a class method of ``BaseHook``); a
    subclass of ``hook_class`` made for this one connection answers with it, so the hook keeps every other
    behaviour of its provider.

    :param hook_class: the provider's hook
    :param connection: the connection it works on
    :param kwargs: the hook's own arguments
    """

    def _get_connection(cls: type, conn_id: str | None = None) -> Connection:
        return connection

    bound = type(
        f"Muxly{hook_class.__name__}", (hook_class,), {"get_connection": classmethod(_get_connection)}
    )
    hook: _HookT = bound(**kwargs)
    return hook


def sql_hook(conn_id: str, field: str = "conn_id") -> Any:
    """The common-sql hook (a ``DbApiHook``) of the Airflow connection ``conn_id``.

    :param conn_id: the connection id
    :param field: the setting that names it (for errors)
    :raises MuxlyConnectionError: not allowed, not found, or not a SQL connection
    :raises MuxlyProviderMissingError: the provider of the connection's type (or common-sql) is missing
    """
    sql = import_module("common-sql", field)
    connection = get_connection(conn_id, field)
    conn_type = str(connection.conn_type or "")
    known = SQL_HOOKS.get(conn_type)
    if known is not None:
        module, extra, distribution = known
        try:
            importlib.import_module(module)
        except ImportError:
            raise MuxlyProviderMissingError(
                f"{field}: Airflow connection {conn_id!r} of type {conn_type!r}", extra, distribution
            ) from None
    try:
        hook = connection.get_hook()  # type: ignore[no-untyped-call]
    except Exception as exc:
        raise MuxlyConnectionError(
            f"{field}: Airflow connection {conn_id!r} of type {conn_type!r} gives no hook "
            f"({type(exc).__name__}); install the Airflow provider of that connection type"
        ) from None
    if not isinstance(hook, sql.DbApiHook):
        raise MuxlyConnectionError(
            f"{field}: Airflow connection {conn_id!r} of type {conn_type!r} is not a SQL connection "
            f"({type(hook).__name__} is not a common-sql DbApiHook)"
        )
    return hook


def sql_engine(conn_id: str, field: str = "conn_id", **engine_kwargs: Any) -> Engine:
    """The SQLAlchemy engine of the Airflow connection ``conn_id``: its common-sql hook's
    ``get_sqlalchemy_engine`` (the hook's ``sqlalchemy_url``, else its URI), with ``engine_kwargs``.

    :raises MuxlyConnectionError: see :func:`sql_hook`, or when the hook cannot build an engine
    :raises MuxlyProviderMissingError: see :func:`sql_hook`
    """
    hook = sql_hook(conn_id, field)
    try:
        engine: Engine = hook.get_sqlalchemy_engine(engine_kwargs=engine_kwargs)
    except Exception as exc:
        raise MuxlyConnectionError(
            f"{field}: Airflow connection {conn_id!r} cannot give a SQLAlchemy engine ({type(exc).__name__})"
        ) from None
    return engine


def http_session(conn_id: str, field: str = "conn_id") -> tuple[str, requests.Session]:
    """The base URL and a ``requests`` session of the Airflow HTTP connection ``conn_id``, as the HTTP
    provider's ``HttpHook`` makes them: ``schema://host:port`` (a host holding ``://`` is the whole base),
    basic auth from login and password, and the extras as headers (``verify``, ``proxies``, ``cert`` and the
    other options ``HttpHook`` reads from them).

    :param conn_id: the connection id
    :param field: the setting that names it (for errors)
    :raises MuxlyConnectionError: not allowed, not found, or no valid base URL
    """
    from airflow.providers.http.hooks.http import HttpHook

    connection = get_connection(conn_id, field)
    hook = on_connection(HttpHook, connection, http_conn_id=conn_id)
    try:
        session = hook.get_conn()
    except ValueError as exc:
        raise MuxlyConnectionError(f"{field}: Airflow connection {conn_id!r}: {exc}") from None
    return str(hook.base_url), session


def join_url(base_url: str, endpoint: str) -> str:
    """``endpoint`` below ``base_url``, with one ``/`` between them (``HttpHook``'s rule)."""
    if base_url and endpoint and not base_url.endswith("/") and not endpoint.startswith("/"):
        return f"{base_url}/{endpoint}"
    return base_url + endpoint
