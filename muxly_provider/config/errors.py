"""Turn pydantic validation errors into :class:`~muxly_provider.exceptions.MuxlyConfigError` sentences.

A field is the column plus the dotted path inside its JSON (``connection_settings.pagination.type``; list items
as ``[0]``); discriminated-union tags that pydantic puts into error locations are dropped. Input values are
quoted only for enumerations and never for secret-looking options, so no secret reaches an error message.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from muxly_provider.config.base import is_secret_name
from muxly_provider.exceptions import MuxlyConfigError

_TYPE_WORDS: dict[str, str] = {
    "dict": "a JSON object",
    "list": "a list",
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "NoneType": "null",
}


_OBJECT_WORDING = re.compile(r"a valid dictionary( or (instance of \w+|object to extract fields from))?")


def _type_word(value: Any) -> str:
    return _TYPE_WORDS.get(type(value).__name__, type(value).__name__)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Optional, unions, lists, dicts, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_models_in(arg))
    return found


def _tag_of(model: type[BaseModel]) -> str | None:
    for name in ("type", "auth_type"):
        field = model.model_fields.get(name)
        if field is not None:
            args = typing.get_args(field.annotation)
            if len(args) == 1 and isinstance(args[0], str):
                return args[0]
    return None


def _field_annotation(model: type[BaseModel], key: str) -> Any:
    for name, field in model.model_fields.items():
        if key in (name, field.alias) or (field.validation_alias and key in str(field.validation_alias)):
            return field.annotation
    return None


def _option_names(model: type[BaseModel]) -> list[str]:
    return sorted(field.alias or name for name, field in model.model_fields.items())


def allowed_options(model: type[BaseModel], loc: Sequence[int | str]) -> list[str] | None:
    """The option names allowed in the object that holds ``loc`` (``None`` when they cannot be told).

    :param model: the model validated at the root of ``loc``
    :param loc: a pydantic error location, ending in the offending key
    """
    current: list[type[BaseModel]] = [model]
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        chosen = [m for m in current if part in (m.__name__, _tag_of(m))]
        if chosen and all(_field_annotation(m, str(part)) is None for m in chosen):
            current = chosen
            continue
        following: list[type[BaseModel]] = []
        for candidate in current:
            annotation = _field_annotation(candidate, str(part))
            if annotation is not None:
                following.extend(_models_in(annotation))
        current = following
        if not current:
            return None
    return _option_names(current[0]) if len(current) == 1 else None


def _path(loc: Sequence[int | str], data: Any) -> list[str]:
    """The user-visible path of ``loc`` in ``data``, without union tags."""
    parts: list[str] = []
    node: Any = data
    last = len(loc) - 1
    known = True
    for index, part in enumerate(loc):
        if isinstance(part, int):
            parts.append(f"[{part}]")
            node = node[part] if isinstance(node, list) and -len(node) <= part < len(node) else None
        elif isinstance(node, dict) and part in node:
            parts.append(part)
            node = node[part]
        elif known and not isinstance(node, dict) and node is not None:
            continue  # a scalar or a list has no keys: a union member tag such as "str"
        elif (
            known
            and index < last
            and (part in node.values() or not part.isidentifier() or part[:1].isupper())
        ):
            continue  # a union tag ("cursor", "constrained-str", "NotificationTargetConfig")
        else:
            parts.append(part)
            node = None
            known = False
    return parts


def _join(prefix: str, parts: list[str]) -> str:
    text = prefix
    for part in parts:
        if part.startswith("["):
            text += part
        else:
            text = f"{text}.{part}" if text else part
    return text


def _expected(error: ErrorDetails, key: str, model: type[BaseModel] | None) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    show_value = (
        not any(is_secret_name(str(part)) for part in (*error["loc"], key))
        and isinstance(value, str | int | float)
        and len(str(value)) <= 60
        and "://" not in str(value)  # a URL may carry user info or a token in its query
    )
    got = f" (got {value!r})" if show_value else ""
    if kind == "missing":
        return "a value: this option is required"
    if kind == "extra_forbidden":
        allowed = allowed_options(model, error["loc"]) if model is not None else None
        listing = f"; allowed: {', '.join(allowed)}" if allowed else ""
        return f"no option named {key!r}{listing}"
    if kind == "literal_error":
        return f"one of {ctx.get('expected')}{got}"
    if kind == "union_tag_invalid":
        return f"one of {ctx.get('expected_tags')} (got {str(ctx.get('tag'))[:60]!r})"
    if kind == "union_tag_not_found":
        return "a value: this option is required"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error") or error["msg"])
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return "a non-empty string"
    if kind == "too_short":
        return f"a list with at least {ctx.get('min_length')} item(s)"
    message = error["msg"]
    for lead in ("Input should be ", "String should ", "List should "):
        if message.startswith(lead):
            message = message[len(lead) :]
            break
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"a number {message}{got}"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        message = _OBJECT_WORDING.sub("a JSON object", message.split(",", 1)[0])
        return f"{message}{got or f' (got {_type_word(value)})'}"
    return f"{message}{got}"


def config_errors(
    exc: ValidationError,
    *,
    table: str,
    row_id: str | None,
    prefix: str,
    data: Any,
    model: type[BaseModel] | None = None,
    skip_fields: frozenset[str] = frozenset(),
) -> list[MuxlyConfigError]:
    """Convert a pydantic error into one :class:`MuxlyConfigError` per field (union alternatives merged).

    :param exc: the error of ``model.model_validate(data)``
    :param table: the table of the row
    :param row_id: the id of the row
    :param prefix: the column validated (``""`` when ``data`` is the whole row)
    :param data: the validated input, to tell keys from union tags
    :param model: the validated model, to list allowed options
    :param skip_fields: first path elements whose errors are dropped (validated elsewhere)
    """
    merged: dict[str, list[str]] = {}
    for error in exc.errors(include_url=False):
        parts = _path(error["loc"], data)
        if parts and parts[0] in skip_fields:
            continue
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            parts.append(str(error.get("ctx", {}).get("discriminator", "type")).strip("'"))
        key = next((p for p in reversed(parts) if not p.startswith("[")), prefix)
        expected = _expected(error, key, model)
        field = _join(prefix, parts) or prefix
        if expected not in merged.setdefault(field, []):
            merged[field].append(expected)
    return [MuxlyConfigError(table, row_id, field, _merge(texts)) for field, texts in merged.items()]


def _merge(texts: list[str]) -> str:
    """Join the expectations of union alternatives, saying once what was got."""
    got = {text[text.rindex(" (got ") :] for text in texts if text.endswith(")") and " (got " in text}
    if len(texts) > 1 and len(got) == 1:
        suffix = got.pop()
        return " or ".join(text.removesuffix(suffix) for text in texts) + suffix
    return " or ".join(texts)
