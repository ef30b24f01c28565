"""Base classes shared by every model of Muxly's JSON columns.

Unknown keys are rejected everywhere a closed list of options is documented (SPEC §2 and REFERENCE.md), so a
typo such as ``base_ulr`` is reported at write time instead of being silently ignored at run time. Free-form
maps (``headers``, ``query_params``, ``column_mapping``, ...) are plain ``dict`` fields, and ``plugin:<name>``
connectors take any object.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from muxly_provider import secret_urls


class StrictConfig(BaseModel):
    """A JSON object with a closed set of keys (unknown keys are an error)."""

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, str_strip_whitespace=False, defer_build=True
    )


NonEmptyStr = Annotated[str, StringConstraints(min_length=1)]
"""A string that is not empty."""

PositiveInt = Annotated[int, Field(gt=0)]
"""An integer greater than 0."""

PositiveFloat = Annotated[float, Field(gt=0)]
"""A number greater than 0."""

NonNegativeInt = Annotated[int, Field(ge=0)]
"""An integer greater than or equal to 0."""

_CONN_ID = re.compile(r"[\w#!()\-.:/\\]{1,250}")


def _conn_id(value: str) -> str:
    if not _CONN_ID.fullmatch(value):
        raise ValueError(
            "the id of an Airflow connection: 1 to 250 letters, digits and _ # ! ( ) - . : / \\ "
            "(no spaces or templates)"
        )
    return value


ConnIdStr = Annotated[str, AfterValidator(_conn_id)]
"""The id of an Airflow connection, as Airflow accepts one (its ``sanitize_conn_id`` rule): the connection is
named, never computed from a template."""

_PLACEHOLDER = re.compile(r"\{\{[^{}]*\}\}|\{[^{}]*\}")


def _parsable_url(value: str) -> str:
    """``value`` when it is not a URL or a URL that parses; a broken URL could not be masked when shown."""
    if "://" in value and not secret_urls.is_url(_PLACEHOLDER.sub("1", value)):
        raise ValueError(
            "a URL that parses: scheme://host[:port]/path, with a port from 0 to 65535, an IPv6 host in "
            "[brackets] and no spaces"
        )
    return value


UrlStr = Annotated[str, StringConstraints(min_length=1), AfterValidator(_parsable_url)]
"""A non-empty URL option: a value with ``://`` must parse (``{name}`` placeholders count as plain text)."""

_SECRET_NAME = re.compile(
    r"(password|passwd|secret|token|api[_-]?key|private_key|credential|auth_code|connection_string|webhook_url"
    r"|service_account_json|authorization|dsn|^headers$|^query_params$)",
    re.IGNORECASE,
)
"""Substrings that make a name secret wherever they appear (``smtp_password``, ``refresh_token``, ``clientSecret``)."""

_SEGMENT = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

_SECRET_WORDS = frozenset(
    {
        "pwd",
        "pass",
        "passphrase",
        "sig",
        "signature",
        "cookie",
        "cookies",
        "jwt",
        "bearer",
        "auth",
        "session",
        "sessionid",
        "private",
        "assertion",
        "apikey",
        "otp",
    }
)
"""Name segments that make a name secret (``pwd``, ``x-session-id``, ``client_assertion``, ``Set-Cookie``)."""

_DESCRIPTORS = frozenset(
    {
        "type",
        "kind",
        "url",
        "uri",
        "endpoint",
        "name",
        "method",
        "algorithm",
        "scheme",
        "mode",
        "format",
        "prefix",
        "suffix",
        "template",
        "path",
        "param",
        "field",
        "location",
        "version",
        "timeout",
        "ttl",
        "expiry",
        "expires",
        "lifetime",
        "seconds",
        "length",
        "enabled",
        "domain",
        "settings",
        "style",
        "strategy",
    }
)
"""Last segments that make a name describe a secret rather than hold one (``auth_url``, ``session_timeout``)."""

_PLAIN_KEY_KINDS = frozenset(
    {
        "upsert",
        "primary",
        "foreign",
        "unique",
        "left",
        "right",
        "join",
        "sort",
        "partition",
        "group",
        "dedup",
        "dedupe",
        "cache",
        "idempotency",
        "lookup",
        "object",
        "row",
        "record",
        "routing",
        "message",
        "composite",
        "merge",
        "match",
        "order",
        "distribution",
        "cluster",
        "clustering",
        "hash",
        "range",
        "natural",
        "surrogate",
        "index",
        "public",
        "column",
        "table",
        "map",
    }
)
"""Words before ``key`` that name an identifier, not a credential (``upsert_key``, ``primary_key``)."""

NON_SECRET_NAMES: frozenset[str] = frozenset(
    {
        "token_url",
        "client_id",
        "grant_type",
        "scope",
        "conn_id",
        "username",
        "smtp_username",
        "location",
        "header_name",
        "param_name",
        "access_key_id",
        "auth_type",
        "secret_name",
    }
)
"""Option names that look like secrets but are not (identifiers and locations)."""


def name_segments(name: str) -> list[str]:
    """The lower-case words of ``name``, split on ``_``, ``-``, ``.``, spaces and camelCase.

    ``X-Session-ID`` -> ``["x", "session", "id"]``, ``clientSecret`` -> ``["client", "secret"]``.
    """
    return [word.lower() for word in _SEGMENT.findall(name)]


def _secret_segments(words: list[str]) -> bool:
    if words == ["code"]:  # an OAuth authorization code
        return True
    if not words or words[-1] in _DESCRIPTORS:
        return False
    if words[-1] in ("key", "keys"):
        return len(words) == 1 or words[-2] not in _PLAIN_KEY_KINDS
    return any(word in _SECRET_WORDS for word in words)


def is_secret_name(name: str) -> bool:
    """Whether an option called ``name`` holds a secret (``password``, ``*_token``, ``api_key``, ...).

    A name is a secret when it contains one of the words of :data:`_SECRET_NAME` anywhere, or when one of its
    segments (split on ``_``, ``-`` and camelCase) is a secret word (``pwd``, ``pass``, ``sig``, ``cookie``,
    ``jwt``, ``bearer``, ``auth``, ``session``, ``private``, ``assertion``, ...) and its last segment does not
    describe the secret (``auth_url``, ``session_timeout``), or when it ends in ``key`` (``key``,
    ``access_key``, ``x-api-key``) after anything but an identifier word (``upsert_key``, ``primary_key``);
    ``key_prefix`` and ``key_template`` are plain. The name ``code`` alone (an OAuth code) is a secret.
    :data:`NON_SECRET_NAMES` are never secrets.

    ``headers`` and ``query_params`` count too: any of their values may carry a credential (``Cookie``,
    ``X-Auth``, ``apikey``), so every value below them is a secret.

    :param name: a key of a JSON object
    """
    if name in NON_SECRET_NAMES:
        return False
    return _SECRET_NAME.search(name) is not None or _secret_segments(name_segments(name))
