"""What one render may spend: output bytes, intermediate text, loop iterations (see :mod:`muxly_provider.templating`).

A :class:`RenderBudget` is active for the duration of one top-level render (a context variable), so the
sandbox's guards can refuse an operation *before* it allocates: ``'x' * 200000000`` is refused by comparing
``1 * 200000000`` with the limit, not by building the string first.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from muxly_provider.exceptions import MuxlyError

DEFAULT_MAX_BYTES = 1_048_576
"""Default of ``[muxly] template_max_bytes``."""

WORK_FACTOR = 16
"""A render may produce at most this many times ``template_max_bytes`` of text in all (blocks, macros, filters)."""

MAX_STEPS = 1_000_000
"""Loop iterations plus outputs of one render."""

MAX_DEPTH = 64
"""Deepest nesting of lists and mappings a template may turn into text."""


class TemplateRenderError(MuxlyError, ValueError):
    """A template cannot be compiled or rendered (the message names the field, the position and the reason,
    never values).

    :param message: what went wrong
    :param field: the field holding the template (``action_params.data_spec.query``), when known
    :param position: where in the template (``line 2, column 7``), when known
    """

    def __init__(self, message: str, field: str | None = None, position: str | None = None) -> None:
        self.reason = message
        self.field = field
        self.position = position
        where = f" ({position})" if position else ""
        super().__init__(
            f"template {field!r}{where}: {message}"
            if field
            else f"{position}: {message}"
            if position
            else message
        )

    def located(self, field: str | None, position: str | None) -> TemplateRenderError:
        """The same error with ``field`` and ``position`` filled in where they were unknown."""
        field = self.field or field
        position = self.position or position
        if field == self.field and position == self.position:
            return self
        return type(self)(self.reason, field, position)


class TemplateLimitError(TemplateRenderError):
    """A template would produce more than a documented limit allows."""


def template_max_bytes() -> int:
    """``[muxly] template_max_bytes``: the largest rendered output of one template (default 1 MiB).

    Read once per process (and again when its environment variable changes): renders run per record.
    """
    return _configured_max_bytes(os.environ.get("AIRFLOW__MUXLY__TEMPLATE_MAX_BYTES"))


@functools.lru_cache(maxsize=8)
def _configured_max_bytes(_environment_value: str | None) -> int:
    from muxly_provider.settings import conf_get

    raw = conf_get("muxly", "template_max_bytes").strip()
    try:
        value = int(raw) if raw else DEFAULT_MAX_BYTES
    except ValueError:
        raise MuxlyError(
            f"[muxly] template_max_bytes must be a whole number of bytes (got {raw!r})"
        ) from None
    return value if value > 0 else DEFAULT_MAX_BYTES


@dataclass
class RenderBudget:
    """The allowance of one render.

    :param max_bytes: the largest output (and the largest single value a template may build)
    :param field: the field being rendered (for error messages)
    """

    max_bytes: int
    field: str | None = None
    produced: int = 0
    steps: int = 0
    output: int = 0

    def too_big(self, what: str) -> TemplateLimitError:
        """The error of a value or output past ``max_bytes``."""
        return TemplateLimitError(
            f"{what} exceeds [muxly] template_max_bytes ({self.max_bytes} bytes)", self.field
        )

    def check_size(self, size: int, what: str = "rendered output") -> None:
        """Refuse a value of ``size`` characters (estimated before it is built)."""
        if size > self.max_bytes:
            raise self.too_big(what)

    def spend(self, size: int) -> None:
        """Count ``size`` characters of text produced (output, blocks, filters, operators)."""
        self.check_size(size, "a value built by the template")
        self.produced += size
        if self.produced > WORK_FACTOR * self.max_bytes:
            raise TemplateLimitError(
                f"produces more than {WORK_FACTOR} x [muxly] template_max_bytes ({self.max_bytes} bytes) "
                "of text in all",
                self.field,
            )

    def step(self) -> None:
        """Count one loop iteration or output."""
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise TemplateLimitError(f"runs more than {MAX_STEPS} loop iterations and outputs", self.field)


_CURRENT: ContextVar[RenderBudget | None] = ContextVar("muxly_template_budget", default=None)


def current_budget() -> RenderBudget:
    """The budget of the render in progress (a fresh one outside a render, e.g. while compiling)."""
    budget = _CURRENT.get()
    return budget if budget is not None else RenderBudget(template_max_bytes())


@contextlib.contextmanager
def budget_scope(field: str | None = None) -> Iterator[RenderBudget]:
    """Make a budget current for a render; nested scopes share the outer one (one budget per top-level call)."""
    outer = _CURRENT.get()
    if outer is not None:
        previous = outer.field
        outer.field = field or previous
        try:
            yield outer
        finally:
            outer.field = previous
        return
    budget = RenderBudget(template_max_bytes(), field)
    token = _CURRENT.set(budget)
    try:
        yield budget
    finally:
        _CURRENT.reset(token)


def estimate(value: Any, cap: int, depth: int = 0) -> int:
    """About how many characters ``str(value)`` (or its JSON) would take; stops counting once past ``cap``.

    Shared references count each time they appear, as they would in the text.
    """
    if value is None or isinstance(value, bool):
        return 5
    if isinstance(value, str | bytes | bytearray | Markup):
        return len(value)
    if isinstance(value, int):
        return value.bit_length() * 30103 // 100000 + 2
    if isinstance(value, float):
        return 24
    if depth > MAX_DEPTH:
        raise TemplateLimitError(f"a value nested more than {MAX_DEPTH} levels deep")
    total = 2
    if isinstance(value, Mapping):
        for key, item in value.items():
            total += estimate(key, cap, depth + 1) + estimate(item, cap, depth + 1) + 4
            if total > cap:
                return total
        return total
    if isinstance(value, list | tuple | set | frozenset):
        for item in value:
            total += estimate(item, cap, depth + 1) + 2
            if total > cap:
                return total
        return total
    return 32
