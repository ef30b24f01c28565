"""URLs that carry credentials: which are secrets, how they are shown masked, and where a secret goes.

A URL that looks like one but does not parse (``https://u:p@[zz]/x``, a port past 65535) is a secret as a whole
and shown as ``***``: its parts cannot be told apart (:func:`is_broken_url`).

A URL with user info, a query string or a fragment (``https://user:pass@host/path?apikey=K#t``) is a secret as a
whole: it is stored encrypted, and shown as ``https://***:***@host/path?apikey=***#***`` so a viewer still sees
where it points. Sent back with ``***`` parts, the stored parts are merged in, but only while the URL's scheme,
host and port are unchanged (:func:`merge_masked`).

:func:`destination_hosts` lists where the secrets of a row are sent (every URL's origin, host and port options,
Airflow connection and connector ids): a stored secret is kept only while that list is unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult, parse_qsl, quote, urlencode, urlsplit, urlunsplit

MASK = "***"

MIN_FRAGMENT = 5
"""Parts shorter than this are not masked alone in logs (``b=2`` would garble every line holding a 2)."""


def _split(value: str) -> SplitResult | None:
    if "://" not in value or any(ch.isspace() for ch in value):
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return None
    return parts if parts.scheme and parts.netloc else None


def is_url(value: object) -> bool:
    """Whether ``value`` is an absolute URL (``scheme://host...``)."""
    return isinstance(value, str) and _split(value) is not None


_URL_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*")


def is_broken_url(value: object) -> bool:
    """Whether ``value`` looks like a URL (``scheme://`` and no spaces) but does not parse (a bad port or host).

    Such a value cannot be masked part by part, so it is a secret as a whole and shown as ``***``.
    """
    return isinstance(value, str) and _URL_LIKE.fullmatch(value) is not None and _split(value) is None


def has_secret_parts(value: object) -> bool:
    """Whether ``value`` is a URL with user info, a query string or a fragment (so a secret as a whole)."""
    parts = _split(value) if isinstance(value, str) else None
    return parts is not None and bool("@" in parts.netloc or parts.query or parts.fragment)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(value: str) -> str | None:
    """``scheme://host:port`` of a URL (lower case; the scheme's default port when none is given), ``None`` when
    ``value`` is not a URL."""
    parts = _split(value)
    if parts is None:
        return None
    scheme = parts.scheme.lower()
    port = parts.port or _DEFAULT_PORTS.get(scheme)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port or ''}"


def _host_part(parts: SplitResult) -> str:
    netloc = str(parts.netloc)
    return netloc.rsplit("@", 1)[1] if "@" in netloc else netloc


def mask(value: str) -> str:
    """``value`` with its user info, query values and fragment replaced by ``***`` (host and path kept)."""
    parts = _split(value)
    if parts is None:
        return MASK
    netloc = _host_part(parts)
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        netloc = (f"{MASK}:{MASK}" if ":" in userinfo else MASK) + "@" + netloc
    query = "&".join(
        f"{quote(name, safe='')}={MASK}" for name, _ in parse_qsl(parts.query, keep_blank_values=True)
    )
    if parts.query and not query:
        query = MASK
    return urlunsplit((parts.scheme, netloc, parts.path, query, MASK if parts.fragment else ""))


def has_masked_parts(value: object) -> bool:
    """Whether ``value`` is a URL with ``***`` in its user info, query or fragment (as :func:`mask` shows it)."""
    parts = _split(value) if isinstance(value, str) else None
    if parts is None:
        return False
    userinfo = parts.netloc.rsplit("@", 1)[0] if "@" in parts.netloc else ""
    return MASK in userinfo or MASK in parts.query or MASK in parts.fragment


def merge_masked(incoming: str, stored: str | None) -> str | None:
    """``incoming`` with each ``***`` part replaced by the same part of ``stored``.

    :returns: the merged URL, or ``None`` when ``stored`` is absent, points at another origin (scheme, host,
        port), or lacks a part that ``incoming`` masks
    """
    new, old = _split(incoming), _split(stored) if stored else None
    if new is None or old is None or origin(incoming) != origin(str(stored)):
        return None
    netloc = _host_part(new)
    if "@" in new.netloc:
        user, _, password = new.netloc.rsplit("@", 1)[0].partition(":")
        old_user, _, old_password = (old.netloc.rsplit("@", 1)[0] if "@" in old.netloc else "").partition(":")
        if (user == MASK and not old_user) or (password == MASK and not old_password):
            return None
        user = old_user if user == MASK else user
        password = old_password if password == MASK else password
        netloc = f"{user}:{password}@{netloc}" if password else f"{user}@{netloc}"
    old_values: dict[str, list[str]] = {}
    for name, value in parse_qsl(old.query, keep_blank_values=True):
        old_values.setdefault(name, []).append(value)
    pairs: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for name, value in parse_qsl(new.query, keep_blank_values=True):
        index = seen[name] = seen.get(name, -1) + 1
        if value == MASK:
            candidates = old_values.get(name, [])
            if index >= len(candidates):
                return None
            value = candidates[index]
        pairs.append((name, value))
    query = urlencode(pairs) if new.query != MASK else old.query
    fragment = new.fragment
    if fragment == MASK:
        if not old.fragment:
            return None
        fragment = old.fragment
    return str(urlunsplit((new.scheme, netloc, new.path, query, fragment)))


def fragments(value: str) -> list[str]:
    """The parts of a secret URL that a library may quote alone (user, password, query, its values, fragment).

    Used to mask task logs; the whole URL is masked too.
    """
    parts = _split(value)
    if parts is None:
        return []
    found = [parts.username or "", parts.password or "", parts.query, parts.fragment]
    found += [item for _, item in parse_qsl(parts.query, keep_blank_values=True)]
    return [item for item in found if len(item) >= MIN_FRAGMENT and item != MASK]


def _host_key(name: str) -> bool:
    lowered = name.lower()
    return lowered in ("host", "port", "conn_id", "connector_id", "endpoint") or lowered.endswith(
        ("_host", "_port", "_conn_id", "hostname")
    )


def destination_hosts(row: Mapping[str, Any], decrypt: Any) -> dict[str, str]:
    """Where the secrets of ``row`` go: field path -> origin of every URL, host/port option and connection id.

    :param row: a row, JSON columns parsed
    :param decrypt: turns a stored (encrypted) value into its plaintext, or raises
    """
    found: dict[str, str] = {}

    def visit(value: Any, path: str, key: str) -> None:
        if isinstance(value, Mapping):
            for name, item in value.items():
                visit(item, f"{path}.{name}" if path else str(name), str(name))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                visit(item, f"{path}[{index}]", key)
        elif isinstance(value, str | int) and not isinstance(value, bool):
            text = str(value)
            try:
                text = decrypt(text) if isinstance(value, str) else text
            except Exception:
                text = "(cannot be decrypted)"
            where = origin(text)
            if where is not None:
                found[path] = where
            elif _host_key(key) and text:
                found[path] = text.lower()

    for column, value in row.items():
        visit(value, str(column), str(column))
    return found
