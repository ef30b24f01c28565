"""Muxly's own filters in the one Jinja environment (``docs/templates.md``), used by the shorthands too.

* ``field(path)``: the value at a Muxly field path (``record | field('first name')``,
  ``record | field('$.items[0].sku')``); ``None`` when the path does not resolve;
* ``as_text``: a value as ``format_string`` writes it: ``None`` and missing give ``''``, booleans ``true`` /
  ``false``, objects and lists compact JSON, anything else ``str()``;
* ``path_param(name)``: the value of ``name`` in a mapping, quoted for one URL path segment; a missing name
  is an error (the ``{name}`` placeholders of an api connector's ``base_url``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from jinja2 import Undefined

from muxly_provider.routing.paths import MISSING, PathError, compile_getter, parse_path
from muxly_provider.templating.budget import TemplateRenderError


def as_text(value: Any) -> str:
    """``value`` as text the way ``format_string`` writes it (see the module docstring)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    if value is MISSING or isinstance(value, Undefined):
        return ""
    return json.dumps(value, separators=(",", ":"), default=str)


def field(value: Any, path: str) -> Any:
    """The value at the field path ``path`` of ``value`` (``None`` when it does not resolve).

    :raises TemplateRenderError: when ``path`` is not a field path
    """
    try:
        segments = parse_path(str(path).strip())
    except PathError as exc:
        raise TemplateRenderError(f"the field filter takes a field path ({exc})") from None
    result = compile_getter(segments)(value)
    return None if result is MISSING else result


def path_param(params: Any, name: str) -> str:
    """``params[name]`` quoted for a URL path segment (``/`` too).

    :raises TemplateRenderError: naming the placeholder when ``params`` has no ``name``
    """
    if not isinstance(params, Mapping) or name not in params:
        raise TemplateRenderError(f"path parameter {name!r} (the placeholder {{{name}}}) has no value")
    return quote(str(params[name]), safe="")


FILTERS = {"as_text": as_text, "field": field, "path_param": path_param}
"""The filters Muxly adds to its environment."""
