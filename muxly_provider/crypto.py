"""Secrets at rest: Fernet encryption with Airflow's ``[core] fernet_key``, and where secrets live in rows.

Encrypted values are strings marked ``fernet:v1:<token>``, so they keep the type a config model expects, are never
encrypted twice, and can be told from plaintext left by older tools (which :func:`decrypt_secret` returns as is).
Like Airflow, ``[core] fernet_key`` may hold several comma-separated keys (a :class:`~cryptography.fernet.MultiFernet`:
the first encrypts, all decrypt), so keys can be rotated. Without a key, encryption fails with
:class:`~muxly_provider.exceptions.MuxlySecretError`: Muxly never stores a secret in plaintext.

Which values are secrets (:data:`SECRET_PATHS` plus a name rule):

* every string under ``connectors.auth_settings.params`` except the identifiers ``client_id``, ``conn_id``,
  ``username``, ``location``, ``header_name``, ``param_name`` and ``token_url``;
* ``webhook_triggers.secret_key``;
* in any JSON column, every string under a key with a secret-looking name (``password``, ``smtp_password``,
  ``token``, ``secret``, ``secret_access_key``, ``api_key``, ``webhook_url`` (a Slack webhook URL is the
  credential), ``connection_string`` (it holds a password), ``authorization``, ...; see
  :func:`muxly_provider.config.base.is_secret_name`), including every string nested below such a key.

Row helpers take row dicts whose JSON columns are already parsed, and return new dicts (the input is not changed).
"""

from __future__ import annotations

import binascii
import copy
import fnmatch
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from muxly_provider.config.base import NON_SECRET_NAMES, is_secret_name
from muxly_provider.exceptions import MuxlySecretError

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

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

Path = tuple[str | int, ...]


def _fernet() -> MultiFernet:
    from airflow.configuration import conf
    from cryptography.fernet import Fernet, MultiFernet

    raw = str(conf.get("core", "fernet_key", fallback="") or "")
    keys = [key.strip() for key in raw.split(",") if key.strip()]
    if not keys:
        raise MuxlySecretError(
            "Muxly stores secrets encrypted and needs Airflow's Fernet key: set [core] fernet_key "
            "(AIRFLOW__CORE__FERNET_KEY), e.g. to the output of "
            "'python -c \"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())\"'"
        )
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except (ValueError, binascii.Error) as exc:
        raise MuxlySecretError(
            "[core] fernet_key is not a valid Fernet key (32 url-safe base64 bytes)"
        ) from exc


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


def _walk(table: str, value: Any, path: Path, secret: bool) -> Iterator[Path]:
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
    elif secret and isinstance(value, str) and value:
        yield path


def secret_paths(table: str, row: Mapping[str, Any]) -> list[Path]:
    """The paths (column, then keys and list indexes) of the secret strings of ``row``.

    :param table: the row's table
    :param row: the row, JSON columns parsed (a JSON column still held as text is not inspected)
    """
    paths: list[Path] = []
    for column, value in row.items():
        if isinstance(value, Mapping | list):
            paths.extend(_walk(table, value, (column,), False))
        elif isinstance(value, str) and value and (_declared(table, column)):
            paths.append((column,))
    return paths


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
    for path in secret_paths(table, result):
        _set_path(result, path, func(get_path(result, path)))
    return result


def encrypt_row_secrets(table: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``row`` with every secret encrypted (values already encrypted are kept as they are).

    :raises MuxlySecretError: when ``[core] fernet_key`` is not set
    """
    return _map_secrets(table, row, encrypt_secret)


def decrypt_row_secrets(table: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``row`` with every secret decrypted (for a run; never log or serialize the result)."""
    return _map_secrets(table, row, decrypt_secret)


def redact_row_secrets(table: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``row`` with every secret replaced by ``"***"`` (for the API, the CLI and exports)."""
    return _map_secrets(table, row, lambda _value: REDACTED)


def secret_values(table: str, row: Mapping[str, Any]) -> list[str]:
    """The secret strings of ``row`` as they are in it (decrypt first to get values to mask in logs)."""
    return [str(get_path(row, path)) for path in secret_paths(table, row)]


def restore_redacted_secrets(
    table: str, row: Mapping[str, Any], stored: Mapping[str, Any] | None
) -> tuple[dict[str, Any], list[Path]]:
    """Replace ``"***"`` secrets of ``row`` by the stored (encrypted) values of the same row.

    This lets an export (secrets redacted) be imported again without destroying the stored secrets.

    :param table: the row's table
    :param row: the incoming row, JSON columns parsed
    :param stored: the stored row, JSON columns parsed (``None`` for a new row)
    :returns: the row with stored values restored, and the paths whose ``"***"`` had no stored value
    """
    result = copy.deepcopy(dict(row))
    missing: list[Path] = []
    for path in secret_paths(table, result):
        if get_path(result, path) != REDACTED:
            continue
        previous = get_path(stored, path) if stored is not None else None
        if isinstance(previous, str) and previous and previous != REDACTED:
            _set_path(result, path, previous)
        else:
            missing.append(path)
    return result, missing


def path_text(path: Path) -> str:
    """``path`` as a field name: ``config.credentials.secret_access_key``, ``headers[0]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text
