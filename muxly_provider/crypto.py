"""Secrets at rest: Fernet encryption with Airflow's ``[core] fernet_key``, and where secrets live in rows.

Encrypted values are strings marked ``fernet:v1:<token>``, so they keep the type a config model expects, are never
encrypted twice, and can be told from plaintext left by older tools (which :func:`decrypt_secret` returns as is).
Like Airflow, ``[core] fernet_key`` may hold several comma-separated keys (a :class:`~cryptography.fernet.MultiFernet`:
the first encrypts, all decrypt), so keys can be rotated; the Fernet is Airflow's own (``airflow.sdk.crypto.get_fernet``,
the key read through the Task SDK's configuration in every process). Without a key, encryption fails with
:class:`~muxly_provider.exceptions.MuxlySecretError`: Muxly never stores a secret in plaintext.

Which values are secrets (:data:`SECRET_PATHS` plus a name rule):

* every string under ``connectors.auth_settings.params`` except the identifiers ``client_id``, ``conn_id``,
  ``username``, ``location``, ``header_name``, ``param_name``, ``token_url``, ``grant_type`` and ``scope``;
* ``webhook_triggers.secret_key``;
* in any JSON column, every string under a key with a secret-looking name (``password``, ``smtp_password``,
  ``token``, ``secret``, ``secret_access_key``, ``api_key``, ``webhook_url`` (a Slack webhook URL is the
  credential), ``connection_string`` (it holds a password), ``authorization``, name segments such as ``pwd``,
  ``pass``, ``sig``, ``cookie``, ``jwt``, ``bearer``, ``auth``, ``session``, a trailing ``key``, and every value
  under ``headers`` and ``query_params``; see :func:`muxly_provider.config.base.is_secret_name`), including every
  string nested below such a key (so in a ``body_template`` the leaves under secret-looking keys, not the whole
  template);
* in ``connectors``, ``destinations`` and ``scheduler_jobs``, every URL with user info, a query string or a
  fragment (``base_url``, ``token_url``, a webhook ``url``, ``pushgateway_url``, ``endpoint_url``, ...): stored
  encrypted as a whole and shown masked (``https://***:***@host/path?apikey=***``, see
  :mod:`muxly_provider.secret_urls`); a value that looks like a URL but does not parse is a secret too, shown
  as ``***`` (URL options refuse such values at write time, see :data:`muxly_provider.config.base.UrlStr`);
* every value that is already encrypted.

Writes go through :func:`keep_stored_secrets`: ``"***"`` (or a masked URL) keeps the stored secret only while
every host the row's secrets are sent to is unchanged, and a value carrying the encryption prefix is accepted
only when it is the stored value itself.

Row helpers take row dicts whose JSON columns are already parsed, and return new dicts (the input is not changed).
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from muxly_provider import secret_urls
from muxly_provider.config.base import NON_SECRET_NAMES, is_secret_name
from muxly_provider.exceptions import MuxlySecretError

if TYPE_CHECKING:
    from airflow.sdk.crypto import FernetProtocol

ENCRYPTED_PREFIX = "fernet:v1:"
"""Marks an encrypted value: ``fernet:v1:<Fernet token>``."""

REDACTED = "***"
"""What the API, the CLI and exports show instead of a secret."""

SECRET_PATHS: Mapping[str, tuple[str, ...]] = {
    "connectors": ("auth_settings.params.*", "connection_settings.connection_string"),
    "destinations": (
        "config.password",
        "config.smtp_password",
        "config.token",
        "config.secret",
        "config.api_key",
        "config.webhook_url",
        "config.connection_string",
        "config.credentials.secret_access_key",
    ),
    "webhook_triggers": ("secret_key",),
}
"""The documented secret fields of each table (``*`` is any key); any secret-looking key is a secret too."""

URL_SECRET_TABLES = frozenset({"connectors", "destinations", "scheduler_jobs"})
"""Tables in which a URL with user info, a query string or a fragment is a secret wherever it is."""

Path = tuple[str | int, ...]


_UNEXPANDED_DEFAULT = "{FERNET_KEY}"
"""What the Task SDK's configuration answers for ``[core] fernet_key`` when no key is configured."""

_fernet_raw: str | None = None


def _fernet() -> FernetProtocol:
    """Airflow's Fernet (``airflow.sdk.crypto.get_fernet()``: a MultiFernet over the comma-separated keys).

    Airflow's helper returns a null Fernet (no encryption) without a key, or raises ``AirflowException`` on a
    bad key; Muxly never stores a secret in plaintext, so both become :class:`MuxlySecretError`. The helper
    caches its Fernet for the process; the cache is cleared when the configured key changes (rotation, tests).
    """
    global _fernet_raw
    from airflow.sdk.crypto import get_fernet

    from muxly_provider import settings

    raw = settings.conf_get("core", "fernet_key").strip()
    if raw == _UNEXPANDED_DEFAULT or not [key for key in raw.split(",") if key.strip()]:
        raise MuxlySecretError(
            "Muxly stores secrets encrypted and needs Airflow's Fernet key: set [core] fernet_key "
            "(AIRFLOW__CORE__FERNET_KEY), e.g. to the output of "
            "'python -c \"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())\"'"
        )
    if raw != _fernet_raw:
        get_fernet.cache_clear()
        _fernet_raw = raw
    try:
        fernet = get_fernet()
    except Exception as exc:  # airflow.sdk.exceptions.AirflowException: "Could not create Fernet object"
        raise MuxlySecretError(
            "[core] fernet_key is not a valid Fernet key (32 url-safe base64 bytes; several keys are "
            "separated by commas)"
        ) from exc
    if not fernet.is_encrypted:  # a key that Airflow read as empty
        raise MuxlySecretError("[core] fernet_key is empty: set it (AIRFLOW__CORE__FERNET_KEY)")
    return fernet


def is_encrypted(value: object) -> bool:
    """Whether ``value`` is a string encrypted by :func:`encrypt_secret`."""
    return isinstance(value, str) and value.startswith(ENCRYPTED_PREFIX)


def encrypt_secret(value: str) -> str:
    """Encrypt ``value`` with Airflow's Fernet key; a value already encrypted is returned unchanged.

    :raises MuxlySecretError: when ``[core] fernet_key`` is not set or not valid
    """
    if is_encrypted(value):
        return value
    return ENCRYPTED_PREFIX + _fernet().encrypt(value.encode()).decode()


def decrypt_secret(value: str) -> str:
    """Decrypt a value written by :func:`encrypt_secret`; plaintext (not marked) is returned unchanged.

    :raises MuxlySecretError: when no configured key decrypts it (the message holds no part of the value)
    """
    if not is_encrypted(value):
        return value
    from cryptography.fernet import InvalidToken

    try:
        return _fernet().decrypt(value[len(ENCRYPTED_PREFIX) :].encode()).decode()
    except InvalidToken as exc:
        raise MuxlySecretError(
            "a secret cannot be decrypted: [core] fernet_key does not hold the key it was encrypted with"
        ) from exc


def _declared(table: str, dotted: str) -> bool:
    return any(fnmatch.fnmatchcase(dotted, pattern) for pattern in SECRET_PATHS.get(table, ()))


def _string_kind(table: str, value: str, named: bool) -> str | None:
    if named:
        return "named"
    if is_encrypted(value) or (
        table in URL_SECRET_TABLES
        and (secret_urls.has_secret_parts(value) or secret_urls.is_broken_url(value))
    ):
        return "url"
    if table in URL_SECRET_TABLES and secret_urls.has_masked_parts(value):
        return "url"
    return None


def _walk(table: str, value: Any, path: Path, secret: bool) -> Iterator[tuple[Path, str]]:
    if isinstance(value, Mapping):
        dotted_parent = ".".join(str(p) for p in path if isinstance(p, str))
        for key, item in value.items():
            name = str(key)
            if table == "connectors" and dotted_parent == "auth_settings.params":
                key_secret = name not in NON_SECRET_NAMES
            else:
                key_secret = is_secret_name(name) or _declared(table, f"{dotted_parent}.{name}")
            yield from _walk(table, item, (*path, name), secret or key_secret)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(table, item, (*path, index), secret)
    elif isinstance(value, str) and value:
        kind = _string_kind(table, value, secret)
        if kind is not None:
            yield path, kind


def _secret_items(table: str, row: Mapping[str, Any]) -> list[tuple[Path, str]]:
    """``(path, kind)`` of each secret string of ``row``: ``named`` (shown as ``***``) or ``url`` (masked)."""
    items: list[tuple[Path, str]] = []
    for column, value in row.items():
        if isinstance(value, Mapping | list):
            items.extend(_walk(table, value, (column,), False))
        elif isinstance(value, str) and value:
            kind = _string_kind(table, value, _declared(table, column))
            if kind is not None:
                items.append(((column,), kind))
    return items


def secret_paths(table: str, row: Mapping[str, Any]) -> list[Path]:
    """The paths (column, then keys and list indexes) of the secret strings of ``row``.

    :param table: the row's table
    :param row: the row, JSON columns parsed (a JSON column still held as text is not inspected)
    """
    return [path for path, _kind in _secret_items(table, row)]


def get_path(row: Mapping[str, Any], path: Path) -> Any:
    """The value at ``path`` of ``row`` (``None`` when absent)."""
    node: Any = row
    for part in path:
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
        else:
            node = node.get(part) if isinstance(node, Mapping) else None
        if node is None:
            return None
    return node


def _set_path(row: dict[str, Any], path: Path, value: Any) -> None:
    node: Any = row
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def _map_secrets(table: str, row: Mapping[str, Any], func: Any) -> dict[str, Any]:
    result = copy.deepcopy(dict(row))
    for path, kind in _secret_items(table, result):
        _set_path(result, path, func(get_path(result, path), kind, path))
    return result


def encrypt_row_secrets(table: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``row`` with every secret encrypted (values already encrypted are kept as they are).

    :raises MuxlySecretError: when ``[core] fernet_key`` is not set
    """
    return _map_secrets(table, row, lambda value, _kind, _path: encrypt_secret(value))


def decrypt_row_secrets(table: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``row`` with every secret decrypted (for a run; never log or serialize the result).

    :raises MuxlySecretError: naming the table, the row and the field that cannot be decrypted
    """

    def decrypt(value: str, _kind: str, path: Path) -> str:
        try:
            return decrypt_secret(value)
        except MuxlySecretError as exc:
            raise MuxlySecretError(
                f"{table} row {row.get('id')!r}: field {path_text(path)!r}: {exc}"
            ) from None

    return _map_secrets(table, row, decrypt)


def _redacted(value: str, kind: str, _path: Path) -> str:
    if kind == "named":
        return REDACTED
    try:
        plain = decrypt_secret(value)
    except MuxlySecretError:
        return REDACTED
    return secret_urls.mask(plain) if secret_urls.is_url(plain) else REDACTED


def redact_row_secrets(table: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``row`` with every secret replaced by ``"***"``, secret URLs masked (for the API, the CLI, exports).

    A URL shows its scheme, host, port and path, with ``***`` for its user info, query values and fragment.
    """
    return _map_secrets(table, row, _redacted)


def secret_values(table: str, row: Mapping[str, Any]) -> list[str]:
    """The secret strings of ``row`` as they are in it, plus the parts of secret URLs a library may quote alone.

    Decrypt the row first to get the values to mask in task logs.
    """
    values: list[str] = []
    for path in secret_paths(table, row):
        value = str(get_path(row, path))
        values.append(value)
        values.extend(secret_urls.fragments(value))
    return values


@dataclass(frozen=True)
class SecretProblem:
    """A secret of an incoming row that cannot be stored: where, and what is expected instead."""

    path: Path
    expected: str


_RESEND = "the secret itself: '***' only keeps a stored secret"


def _decrypts(value: str) -> bool:
    """Whether ``value`` decrypts with the configured key (a missing key is an error, not a ``False``)."""
    if not is_encrypted(value):
        return True
    _fernet()
    try:
        decrypt_secret(value)
    except MuxlySecretError:
        return False
    return True


def _kept_value(value: str, previous: Any) -> tuple[str | None, str | None]:
    """``(value to store, problem)`` for an incoming secret that refers to the stored one (or plants one)."""
    stored = previous if isinstance(previous, str) and previous and previous != REDACTED else None
    if stored is not None and not _decrypts(stored):
        return None, "the secret again: the stored one cannot be decrypted with [core] fernet_key"
    if value == REDACTED:
        return (stored, None) if stored is not None else (None, _RESEND)
    if is_encrypted(value):
        if value == stored:
            return value, None
        if not _decrypts(value):
            return None, (
                f"the secret in plain text: the value starts with {ENCRYPTED_PREFIX!r} but [core] fernet_key "
                "does not decrypt it"
            )
        return None, (
            f"the secret in plain text: values starting with {ENCRYPTED_PREFIX!r} are written by Muxly only"
        )
    merged = secret_urls.merge_masked(value, decrypt_secret(stored) if stored is not None else None)
    if merged is None:
        return None, "the URL with its secret parts: its '***' parts have no stored value for this host"
    return merged, None


def keep_stored_secrets(
    table: str, row: Mapping[str, Any], stored: Mapping[str, Any] | None
) -> tuple[dict[str, Any], list[SecretProblem]]:
    """Resolve the secrets of an incoming row that refer to the stored row (``"***"``, masked URLs, ciphertext).

    * ``"***"`` keeps the stored secret at the same path; a URL with ``***`` parts takes those parts from the
      stored URL when its scheme, host and port are the same;
    * a value with the encryption prefix is kept only when it is the stored value at the same path (the
      columns a partial update does not change), else refused: ciphertext is never accepted from a client;
    * a stored secret is kept only while every host the row's secrets go to (URLs, ``*_host``, ``*_port``,
      ``conn_id``, ``connector_id``) is unchanged: otherwise each kept secret is a problem, so the client sends
      it again for the new host.

    :param table: the row's table
    :param row: the incoming row, JSON columns parsed
    :param stored: the stored row, JSON columns parsed (``None`` for a new row)
    :returns: the row to store (kept secrets as stored) and the problems, each naming its path
    :raises MuxlySecretError: when a stored secret must be decrypted and ``[core] fernet_key`` is not set
    """
    result = copy.deepcopy(dict(row))
    problems: list[SecretProblem] = []
    kept: list[Path] = []
    items = _secret_items(table, result)
    if stored is not None:  # "***" where a secret is stored, also where the value alone would not tell
        seen = {path for path, _kind in items}
        items += [
            (path, kind)
            for path, kind in _secret_items(table, stored)
            if path not in seen and get_path(result, path) == REDACTED
        ]
    for path, kind in items:
        value = get_path(result, path)
        refers = (
            value == REDACTED
            or is_encrypted(value)
            or (kind == "url" and secret_urls.has_masked_parts(value))
        )
        if not refers:
            continue
        previous = get_path(stored, path) if stored is not None else None
        new_value, problem = _kept_value(value, previous)
        if problem is not None or new_value is None:
            problems.append(SecretProblem(path, problem or _RESEND))
            continue
        _set_path(result, path, new_value)
        kept.append(path)
    if kept and stored is not None:
        before = secret_urls.destination_hosts(stored, decrypt_secret)
        after = secret_urls.destination_hosts(result, decrypt_secret)
        changed = sorted(key for key in set(before) | set(after) if before.get(key) != after.get(key))
        if changed:
            expected = f"the secret again: it would be sent to a changed destination ({', '.join(changed)})"
            problems.extend(SecretProblem(path, expected) for path in kept)
    return result, problems


def restore_redacted_secrets(
    table: str, row: Mapping[str, Any], stored: Mapping[str, Any] | None
) -> tuple[dict[str, Any], list[Path]]:
    """:func:`keep_stored_secrets` returning only the paths of the problems (the older interface)."""
    result, problems = keep_stored_secrets(table, row, stored)
    return result, [problem.path for problem in problems]


def path_text(path: Path) -> str:
    """``path`` as a field name: ``config.credentials.secret_access_key``, ``headers[0]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text
