"""Field paths into records: parsing, reading, and copy-on-write setting and deleting.

A path names a value inside a record (a JSON object). Two spellings are accepted and mean the same:

* dotted: ``user.profile.country``, with list indices in brackets: ``items[0].sku``, ``a.b[2]``;
* JSONPath: ``$.user.profile.country``, ``$.items[0].sku``, ``$['first name']``, ``$[0]``.

A bracket holds an integer index (``[-1]`` is the last element) or a quoted key (``['a.b']``, with ``''`` or
``\\'`` for a quote inside). Wildcards and filters of full JSONPath are not supported. Outside brackets a key
runs up to the next ``.`` or ``[``, so keys may hold spaces or hyphens (``first name``, ``user-agent``).
A key made of digits (``a.0``) is a key, never an index: lists are indexed with brackets.

Reading never raises: a path that does not resolve gives :data:`MISSING`. Setting and deleting never modify
their input: they copy only the containers along the path (copy-on-write) and share everything else, so a
transformed record shares unchanged sub-objects with the original and both must be treated as read-only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Final

Segment = str | int
"""One step of a path: a key of an object or an index of a list."""

Getter = Callable[[Any], Any]
"""A compiled path reader: record -> value or :data:`MISSING`."""


class _Missing:
    """The type of :data:`MISSING`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
"""What reading a path that does not resolve gives (distinct from a JSON ``null``, which is ``None``)."""


class PathError(ValueError):
    """A path cannot be parsed.

    :param message: what is wrong
    :param position: the 0-based offset of the error in the path text
    """

    def __init__(self, message: str, position: int) -> None:
        self.message = message
        self.position = position
        super().__init__(f"{message} at position {position}")


class PathConflictError(ValueError):
    """A value cannot be set at a path because the record has another shape there (the message names the path)."""


def _read_quoted(text: str, start: int) -> tuple[str, int]:
    """The key of a quoted bracket starting at ``start`` (the quote) and the offset after the closing quote."""
    quote = text[start]
    chars: list[str] = []
    i = start + 1
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text) and text[i + 1] in (quote, "\\"):
            chars.append(text[i + 1])
            i += 2
        elif c == quote:
            if i + 1 < len(text) and text[i + 1] == quote:
                chars.append(quote)
                i += 2
            else:
                return "".join(chars), i + 1
        else:
            chars.append(c)
            i += 1
    raise PathError("unterminated quoted key", start)


def _read_bracket(text: str, start: int) -> tuple[Segment, int]:
    """The segment of the bracket opening at ``start`` and the offset after its ``]``."""
    i = start + 1
    if i < len(text) and text[i] in "'\"":
        key, i = _read_quoted(text, i)
        segment: Segment = key
    else:
        j = i + 1 if i < len(text) and text[i] == "-" else i
        while j < len(text) and "0" <= text[j] <= "9":
            j += 1
        digits = text[i:j]
        if not digits or digits == "-":
            if i < len(text) and text[i] == "*":
                raise PathError("wildcards are not supported", i)
            raise PathError("expected an index or a quoted key after '['", i)
        if len(digits) > 18:
            raise PathError("index too large", i)
        segment = int(digits)
        i = j
    if i >= len(text) or text[i] != "]":
        raise PathError("expected ']'", i)
    return segment, i + 1


def _read_key(text: str, start: int) -> tuple[str, int]:
    i = start
    while i < len(text) and text[i] not in ".[]":
        i += 1
    if i == start:
        raise PathError("expected a field name", start)
    return text[start:i], i


@lru_cache(maxsize=4096)
def parse_path(text: str) -> tuple[Segment, ...]:
    """The segments of ``text`` (dotted or JSONPath).

    :param text: the path, e.g. ``user.profile.country`` or ``$.items[0].sku``
    :raises PathError: when the text is not a path
    """
    segments: list[Segment] = []
    i = 0
    if text.startswith("$"):
        i = 1
        if i == len(text):
            raise PathError("expected '.' or '[' after '$'", i)
    else:
        if text[:1] == "[":
            segment, i = _read_bracket(text, 0)
        else:
            segment, i = _read_key(text, 0)
        segments.append(segment)
    while i < len(text):
        c = text[i]
        if c == ".":
            key, i = _read_key(text, i + 1)
            segments.append(key)
        elif c == "[":
            segment, i = _read_bracket(text, i)
            segments.append(segment)
        else:
            raise PathError(f"unexpected {c!r} in path", i)
    return tuple(segments)


def _plain(key: str, first: bool) -> bool:
    """Whether ``key`` can be written without brackets."""
    if not key or key.strip() != key or any(c in key for c in ".[]'\"$"):
        return False
    return not (first and not (key[0].isalpha() or key[0] == "_"))


def _quoted(key: str) -> str:
    return "['" + key.replace("\\", "\\\\").replace("'", "''") + "']"


def format_path(segments: Sequence[Segment], *, identifier: Callable[[str], bool] | None = None) -> str:
    """The text of a path (the inverse of :func:`parse_path`).

    :param segments: the path's segments
    :param identifier: a check that a key is a plain identifier; by default, keys without ``.[]'"$`` whose
        first character is a letter or ``_``. The dotted form is used when the first key passes, else JSONPath.
    """
    check = identifier or (lambda key: _plain(key, True) and all(c.isalnum() or c in "_-" for c in key))
    parts: list[str] = []
    first = segments[0] if segments else None
    if isinstance(first, str) and check(first):
        parts.append(first)
        rest = segments[1:]
    else:
        parts.append("$")
        rest = segments
    for segment in rest:
        if isinstance(segment, int):
            parts.append(f"[{segment}]")
        elif _plain(segment, False) and all(c.isalnum() or c in "_-" for c in segment):
            parts.append("." + segment)
        else:
            parts.append(_quoted(segment))
    return "".join(parts)


def compile_getter(segments: Sequence[Segment]) -> Getter:
    """A fast reader of the value at ``segments``; it gives :data:`MISSING` for any record it cannot follow.

    :param segments: the path's segments (see :func:`parse_path`)
    """
    segs = tuple(segments)
    if len(segs) == 1 and isinstance(segs[0], str):
        key = segs[0]

        def get1(record: Any) -> Any:
            try:
                return record[key]
            except Exception:
                return MISSING

        return get1
    if len(segs) == 2 and isinstance(segs[0], str) and isinstance(segs[1], str):
        key1, key2 = segs

        def get2(record: Any) -> Any:
            try:
                return record[key1][key2]
            except Exception:
                return MISSING

        return get2

    def get(record: Any) -> Any:
        current = record
        try:
            for segment in segs:
                if type(segment) is int and not isinstance(current, list | tuple):
                    return MISSING
                current = current[segment]
        except Exception:
            return MISSING
        return current

    return get


def get_path(record: Any, path: str | Sequence[Segment]) -> Any:
    """The value at ``path`` in ``record``, :data:`MISSING` when it does not resolve.

    :param record: the record (any value: a wrong shape gives :data:`MISSING`)
    :param path: the path's text or segments
    """
    return compile_getter(parse_path(path) if isinstance(path, str) else path)(record)


def _describe(segments: Sequence[Segment], upto: int) -> str:
    return format_path(segments[:upto]) if upto else "the record"


def set_path(record: Mapping[str, Any], segments: Sequence[Segment], value: Any) -> dict[str, Any]:
    """A copy of ``record`` with ``value`` at ``segments``; missing intermediate objects are created.

    Only the containers along the path are copied. A list index must exist (``[n]`` replaces an element).

    :param record: the record (not modified)
    :param segments: where to set
    :param value: the value (stored as is, not copied)
    :raises PathConflictError: when a container along the path has another type, or an index is out of range
    """

    def assign(current: Any, depth: int) -> Any:
        segment = segments[depth]
        last = depth == len(segments) - 1
        if isinstance(segment, int):
            if not isinstance(current, list | tuple):
                raise PathConflictError(
                    f"cannot set {format_path(segments)!r}: {_describe(segments, depth)} is not a list"
                )
            items = list(current)
            if not -len(items) <= segment < len(items):
                raise PathConflictError(f"cannot set {format_path(segments)!r}: index {segment} out of range")
            items[segment] = value if last else assign(items[segment], depth + 1)
            return items
        if current is MISSING:
            copy: dict[str, Any] = {}
        elif isinstance(current, Mapping):
            copy = dict(current)
        else:
            raise PathConflictError(
                f"cannot set {format_path(segments)!r}: {_describe(segments, depth)} is not an object"
            )
        copy[segment] = value if last else assign(copy.get(segment, MISSING), depth + 1)
        return copy

    if not segments:
        raise PathConflictError("cannot set an empty path")
    result = assign(record, 0)
    if not isinstance(result, dict):
        raise PathConflictError(f"cannot set {format_path(segments)!r}: the record is not an object")
    return result


def delete_path(record: Mapping[str, Any], segments: Sequence[Segment]) -> Mapping[str, Any]:
    """A copy of ``record`` without the value at ``segments``, or ``record`` itself when there is none there.

    Deleting a list element (``items[0]``) removes it from a copy of the list.

    :param record: the record (not modified)
    :param segments: what to delete
    """
    if not segments or compile_getter(segments)(record) is MISSING:
        return record

    def remove(current: Any, depth: int) -> Any:
        segment = segments[depth]
        last = depth == len(segments) - 1
        if isinstance(segment, int):
            items = list(current)
            if last:
                del items[segment]
            else:
                items[segment] = remove(items[segment], depth + 1)
            return items
        copy = dict(current)
        if last:
            del copy[segment]
        else:
            copy[segment] = remove(copy[segment], depth + 1)
        return copy

    result: dict[str, Any] = remove(record, 0)
    return result
