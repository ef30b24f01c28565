"""The building blocks of transformations, and the one-record-in, one-record-out types.

The registry of every type is :data:`muxly_provider.routing.transformations.FACTORIES`; stream types live in
:mod:`muxly_provider.routing.transform_stream`, ``formula`` in :mod:`muxly_provider.routing.formula` and ``join``
in :mod:`muxly_provider.routing.transform_join`. A factory checks a step's ``config`` once (raising :class:`~muxly_provider.exceptions.MuxlyConfigError` that
names the row and the key) and returns a compiled step:

* a :class:`MapStep` for one-record-in, at-most-one-out steps (``None`` drops the record: a ``filter``);
* a :class:`StreamStep` for steps that emit several records per input or hold records until the end of the
  stream (``array_flatten``, ``aggregate``).

Steps never modify their input: they copy the containers along the paths they change (see
:mod:`muxly_provider.routing.paths`). A step that cannot handle one record raises :class:`StepFailure` with a
reason naming fields only, never record values.

A :class:`MapStep` may also offer an *inline fragment*: Python source lines that do the same work in place on a
record the pipeline owns, so that :mod:`muxly_provider.routing.pipeline_codegen` can fuse a rule's steps into
one generated function (one copy of the record per rule instead of one per step). Fragments are built from
fixed templates and names returned by ``bind`` only, never from user text.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from muxly_provider.exceptions import MuxlyConfigError
from muxly_provider.routing.condition_ast import Compare, CompareOp, Exists, In, Literal, Node, Not, Path
from muxly_provider.routing.conditions import compile_node
from muxly_provider.routing.paths import (
    MISSING,
    PathConflictError,
    PathError,
    Segment,
    compile_getter,
    delete_path,
    format_path,
    parse_path,
    set_path,
)
from muxly_provider.routing.route_specs import TransformationSpec

Record = Mapping[str, Any]

Bind = Callable[[str, Any], str]
"""Puts a value into a generated function's namespace and returns the generated name to use in source."""

Fragment = Callable[[Bind], list[str]]
"""Source lines doing a step in place on the variable ``record`` (a top-level dict the pipeline owns).

Rules: read and write ``record`` only; copy any nested container before changing it; leave ``record``
unchanged when raising (compute first, then assign), since on any exception the step's ``apply`` runs on the
same record to give the precise error; drop the record with ``return _drop()``.
"""


class StepFailure(Exception):
    """A step cannot transform one record; ``reason`` names fields only."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class MapStep:
    """A step turning one record into one record, or ``None`` to drop it.

    :param apply: record -> new record (or the same one, unchanged), or ``None``; never modifies its input
    :param inline: the optional in-place fragment of the same step (see :data:`Fragment`)
    """

    apply: Callable[[Record], Record | None]
    inline: Fragment | None = None


class StreamStep(ABC):
    """A step over the stream of records: any number of outputs per input, plus a flush at the end."""

    @abstractmethod
    def process(self, record: Record) -> Iterable[Record]:
        """The records to pass on for ``record`` (possibly none, while the step holds it)."""

    def finish(self) -> Iterable[Record]:
        """The records held until the end of the stream."""
        return ()


Step = MapStep | StreamStep
StepFactory = Callable[[TransformationSpec], Step]


def _top_key(segments: tuple[Segment, ...]) -> str | None:
    """The key of a one-segment path (in-place fragments handle only those)."""
    return segments[0] if len(segments) == 1 and isinstance(segments[0], str) else None


def config_error(spec: TransformationSpec, key: str, expected: str) -> MuxlyConfigError:
    """The error of a bad ``config.<key>`` of the step ``spec``."""
    return MuxlyConfigError("rule_transformations", spec.id, f"config.{key}", expected)


def step_str(spec: TransformationSpec, key: str, *, allow_empty: bool = False) -> str:
    """The string ``config.<key>`` of ``spec``."""
    value = spec.config.get(key)
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise config_error(spec, key, "a non-empty string" if not allow_empty else "a string")
    return value


def step_path(spec: TransformationSpec, key: str, text: str | None = None) -> tuple[Segment, ...]:
    """The segments of the path ``config.<key>`` of ``spec`` (or of ``text``, reported as that key)."""
    raw = step_str(spec, key) if text is None else text
    try:
        return parse_path(raw.strip())
    except PathError as exc:
        raise config_error(spec, key, f"a field path ({exc})") from exc


def step_paths(spec: TransformationSpec, key: str) -> list[tuple[Segment, ...]]:
    """The segments of the list of paths ``config.<key>`` of ``spec``."""
    value = spec.config.get(key)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v.strip() for v in value):
        raise config_error(spec, key, "a list of field paths")
    return [step_path(spec, key, v) for v in value]


def set_or_fail(record: Record, segments: tuple[Segment, ...], value: Any) -> dict[str, Any]:
    """:func:`~muxly_provider.routing.paths.set_path`, a conflict being a :class:`StepFailure`."""
    try:
        return set_path(record, segments, value)
    except PathConflictError as exc:
        raise StepFailure(str(exc)) from exc


def rename_field(spec: TransformationSpec) -> Step:
    """``{"from": path, "to": path}``: moves a value; a record without ``from`` passes unchanged."""
    source, target = step_path(spec, "from"), step_path(spec, "to")
    get = compile_getter(source)

    def apply(record: Record) -> Record:
        value = get(record)
        if value is MISSING or source == target:
            return record
        return set_or_fail(delete_path(record, source), target, value)

    old, new = _top_key(source), _top_key(target)
    if old is None or new is None or old == new:
        return MapStep(apply)

    def inline(bind: Bind) -> list[str]:
        k_old, k_new = bind("k", old), bind("k", new)
        return [f"if {k_old} in record:", f"    record[{k_new}] = record.pop({k_old})"]

    return MapStep(apply, inline)


def set_field(spec: TransformationSpec) -> Step:
    """``{"field": path, "value": json}``: sets a constant, creating missing intermediate objects."""
    target = step_path(spec, "field")
    value = spec.config.get("value")
    mutable = isinstance(value, dict | list)

    def apply(record: Record) -> Record:
        # A container value is copied so that records never share (and destinations never alter) the config.
        return set_or_fail(record, target, copy.deepcopy(value) if mutable else value)

    key = _top_key(target)
    if key is None:
        return MapStep(apply)

    def inline(bind: Bind) -> list[str]:
        constant = bind("v", value)
        code = f"{bind('deepcopy', copy.deepcopy)}({constant})" if mutable else constant
        return [f"record[{bind('k', key)}] = {code}"]

    return MapStep(apply, inline)


def remove_field(spec: TransformationSpec) -> Step:
    """``{"field": path}``: removes a value (nothing happens when it is absent)."""
    target = step_path(spec, "field")
    key = _top_key(target)

    def inline(bind: Bind) -> list[str]:
        return [f"record.pop({bind('k', key)}, None)"]

    return MapStep(lambda record: delete_path(record, target), None if key is None else inline)


_FILTER_OPERATORS: dict[str, CompareOp] = {
    ">": ">",
    "<": "<",
    ">=": ">=",
    "<=": "<=",
    "=": "==",
    "==": "==",
    "!=": "!=",
    "contains": "CONTAINS",
    "not_contains": "NOT CONTAINS",
    "starts_with": "STARTS WITH",
    "ends_with": "ENDS WITH",
}
_SCALARS = (str, int, float, bool, type(None))


def filter_records(spec: TransformationSpec) -> Step:
    """``{"field", "operator", "value"}``: keeps records for which the test holds (condition semantics).

    Operators: ``>``, ``<``, ``>=``, ``<=``, ``=``/``==``, ``!=``, ``contains``, ``not_contains``,
    ``starts_with``, ``ends_with``, and also ``in``/``not_in`` (``value`` a list) and ``exists``/``not_exists``.
    """
    path = Path(step_path(spec, "field"))
    operator = str(spec.config.get("operator", "")).strip().lower()
    value = spec.config.get("value")
    node: Node
    if operator in ("exists", "not_exists"):
        node = Exists(path) if operator == "exists" else Not(Exists(path))
    elif operator in ("in", "not_in"):
        if not isinstance(value, list) or not all(isinstance(v, _SCALARS) for v in value):
            raise config_error(spec, "value", f"a list of values for operator {operator!r}")
        node = In(path, tuple(Literal(v) for v in value), operator == "not_in")
    elif operator in _FILTER_OPERATORS:
        if not isinstance(value, _SCALARS):
            raise config_error(spec, "value", "a string, number, boolean or null")
        node = Compare(_FILTER_OPERATORS[operator], path, Literal(value))
    else:
        names = ", ".join([*_FILTER_OPERATORS, "in", "not_in", "exists", "not_exists"])
        raise config_error(spec, "operator", f"one of {names}")
    matches = compile_node(node)

    def inline(bind: Bind) -> list[str]:
        # A compiled condition never raises and reads only.
        return [f"if not {bind('cond', matches)}(record):", "    return _drop()"]

    return MapStep(lambda record: record if matches(record) else None, inline)


def extract(spec: TransformationSpec) -> Step:
    """``{"fields": [paths]}``: keeps only these paths (nested objects keep their shape; absent ones are skipped)."""
    targets = step_paths(spec, "fields")
    if not targets:
        raise config_error(spec, "fields", "at least one field path")
    for target in targets:
        if any(isinstance(s, int) for s in target):
            raise config_error(spec, "fields", f"paths without list indices (got {format_path(target)!r})")
    getters = [(target, compile_getter(target)) for target in targets]

    def apply(record: Record) -> Record:
        out: dict[str, Any] = {}
        for target, get in getters:
            value = get(record)
            if value is not MISSING:
                if len(target) == 1:
                    out[target[0]] = value  # type: ignore[index]
                else:
                    out = set_or_fail(out, target, value)
        return out

    return MapStep(apply)


def format_string(spec: TransformationSpec) -> Step:
    """``{"template", "output_field"}``: a record template in Muxly's one Jinja environment.

    ``{{field}}``/``{{a.b}}``/``{{first name}}`` read field paths (missing or null: empty); any Jinja works too
    (``docs/templates.md``). A template of text and field placeholders only runs as joined parts, inline.
    """
    from muxly_provider.templating import TemplateRenderError
    from muxly_provider.templating.records import as_text, compile_field_template

    source = step_str(spec, "template", allow_empty=True)
    target = step_path(spec, "output_field")
    try:
        template = compile_field_template(source)
    except TemplateRenderError as exc:
        where = f" at {exc.position}" if exc.position else ""
        raise config_error(spec, "template", f"a template ({exc.reason}{where})") from None
    if template.parts is None:

        def render(record: Record) -> Record:
            try:
                text = template.render(record, "config.template")
            except TemplateRenderError as exc:
                raise StepFailure(str(exc)) from None
            return set_or_fail(record, target, text)

        return MapStep(render)
    parts = template.parts

    def apply(record: Record) -> Record:
        text = "".join(part if isinstance(part, str) else as_text(part(record)) for part in parts)
        return set_or_fail(record, target, text)

    key = _top_key(target)
    if key is None:
        return MapStep(apply)

    def inline(bind: Bind) -> list[str]:
        pieces: list[str] = []
        text_of, str_type = bind("text", as_text), bind("str", str)
        for index, part in enumerate(parts):
            if isinstance(part, str):
                if part:
                    pieces.append(bind("s", part))
                continue
            temp = f"_t{index}"
            pieces.append(
                f"({temp} if ({temp} := {bind('g', part)}(record)).__class__ is {str_type} else {text_of}({temp}))"
            )
        return [f"record[{bind('k', key)}] = {' + '.join(pieces) or repr('')}"]

    return MapStep(apply, inline)
