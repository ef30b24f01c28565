"""A faster form of a compiled condition: one generated Python function instead of a tree of closures.

Routing evaluates every rule's condition for every record, so a condition should cost about what a hand-written
function costs. Nested closures pay one Python call per node; this module instead emits the source of a single
function for the tree's AND/OR/NOT structure and its common comparisons (a field against a constant), and
compiles it with :func:`compile`.

**User text never reaches the generated source.** The source is assembled from fixed templates and generated
names only (``_k0``, ``_c1``, ``_s2``); every key, constant and helper is passed in through the function's
namespace, whose ``__builtins__`` is empty. A field named ``__import__('os')`` is just the value of ``_k0``.

The generated code takes the fast route for exact JSON types (``dict`` records, ``str``/``int``/``float``
values) and hands any other value to the general semantics of
:mod:`muxly_provider.routing.condition_values`; on any exception (a record of an odd shape) it returns the answer
of the closure form, which never raises. Both forms are checked against each other by the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final

from muxly_provider.routing.condition_ast import (
    Always,
    And,
    Compare,
    Exists,
    In,
    Literal,
    Node,
    Not,
    Or,
    Path,
)
from muxly_provider.routing.condition_values import as_number, equals
from muxly_provider.routing.paths import MISSING, compile_getter

MAX_NODES: Final = 400
"""Larger trees keep the closure form (the generated source would only get slower to compile)."""

MAX_NESTING: Final = 24
"""Deeper trees keep the closure form (Python limits the nesting of parentheses)."""

_ORDER_WANTED = {">": (1,), ">=": (0, 1), "<": (-1,), "<=": (-1, 0)}


class _Absent:
    """How generated code reads a missing field for an ordering or text test: always false, never raising."""

    __slots__ = ()

    def __lt__(self, other: Any) -> bool:
        return False

    __le__ = __gt__ = __ge__ = __lt__

    def __contains__(self, item: Any) -> bool:
        return False

    def startswith(self, prefix: Any) -> bool:
        return False

    endswith = startswith


_ABSENT: Final = _Absent()


def _plain(text: str) -> bool:
    """Whether only a string equal to ``text`` can equal ``text`` (no number, boolean or date text)."""
    return not any("0" <= c <= "9" for c in text) and text.lower() not in ("true", "false")


def _size(node: Node, depth: int = 0) -> tuple[int, int]:
    """The number of nodes and the depth of ``node``."""
    if isinstance(node, And | Or):
        sizes = [_size(child, depth + 1) for child in node.operands]
        return 1 + sum(s for s, _ in sizes), max(d for _, d in sizes)
    if isinstance(node, Not):
        size, deepest = _size(node.operand, depth + 1)
        return size + 1, deepest
    return 1, depth


class _Emitter:
    def __init__(self, fallback: Callable[[Node], Callable[[Any], bool]]) -> None:
        self.namespace: dict[str, Any] = {
            "__builtins__": {},
            "_M": MISSING,
            "_E": MappingProxyType({}),
            "_NUM": (int, float),
            "_A": _ABSENT,
            "_bool": bool,
            "_Error": Exception,
        }
        self.fallback = fallback

    def bind(self, prefix: str, value: Any) -> str:
        name = f"_{prefix}{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def read(self, path: Path, missing: str = "_M") -> str:
        """Code reading ``path`` from ``record``; a missing value reads as ``missing`` (``_M`` or ``_A``)."""
        segments = path.segments
        if all(isinstance(s, str) for s in segments):
            code = "record"
            for i, segment in enumerate(segments):
                default = missing if i == len(segments) - 1 else "_E"
                code += f".get({self.bind('k', segment)}, {default})"
            return code
        getter = self.bind("g", compile_getter(segments))
        if missing == "_M":
            return f"{getter}(record)"
        return f"(_A if (_m := {getter}(record)) is _M else _m)"

    def emit(self, node: Node) -> str:
        if isinstance(node, And | Or):
            joiner = " and " if isinstance(node, And) else " or "
            return "(" + joiner.join(self.emit(child) for child in node.operands) + ")"
        if isinstance(node, Not):
            return f"(not {self.emit(node.operand)})"
        if isinstance(node, Always):
            return "True"
        if isinstance(node, Exists):
            return f"({self.read(node.path)} is not _M)"
        if isinstance(node, Compare) and isinstance(node.left, Path) and isinstance(node.right, Literal):
            code = self._compare(node.op, node.left, node.right.value)
            if code is not None:
                return code
        if isinstance(node, In) and isinstance(node.operand, Path):
            code = self._in(node)
            if code is not None:
                return code
        return f"{self.bind('f', self.fallback(node))}(record)"

    def _typed(self, read: str, check: str, fast: str, slow: Callable[[Any], bool]) -> str:
        """``fast`` when the value passes ``check``, else the general semantics ``slow(value)``."""
        return f"({fast} if {check.format(v=f'(_a := {read})')} else {self.bind('s', slow)}(_a))"

    def _compare(self, op: str, path: Path, value: Any) -> str | None:
        kind = type(value)
        positive = op.removeprefix("NOT ")
        plain = kind is str and _plain(value)
        constant = self.bind("c", value)
        code: str | None = None
        if positive in ("==", "!="):
            if value is None:
                code = f"((_a := {self.read(path)}) is None or _a is _M)"
            elif plain:
                # No other value equals a plain string (no digits, not 'true'/'false'): Python's == is exact.
                code = f"({self.read(path)} == {constant})"
            else:
                check = (
                    "{v}.__class__ in _NUM"
                    if kind in (int, float)
                    else "{v}.__class__ is " + self.bind("t", kind)
                )
                code = self._typed(self.read(path), check, f"_a == {constant}", lambda v: equals(v, value))
            return f"(not {code})" if op == "!=" else code
        if op in _ORDER_WANTED:
            if kind is str:
                # str vs str compares; any other type raises TypeError and the closure form answers.
                return f"({self.read(path, '_A')} {op} {constant})"
            if kind in (int, float):
                # bool compares like an int in Python but has no order here.
                return f"((_a := {self.read(path, '_A')}) {op} {constant} and _a.__class__ is not _bool)"
            return "False"
        if plain and positive == "CONTAINS":
            code = f"({constant} in {self.read(path, '_A')})"
        elif kind is str and positive in ("STARTS WITH", "ENDS WITH"):
            method = "startswith" if positive == "STARTS WITH" else "endswith"
            code = f"{self.read(path, '_A')}.{method}({constant})"
        if code is not None and op.startswith("NOT "):
            return f"(not {code})"
        return code

    def _in(self, node: In) -> str | None:
        assert isinstance(node.operand, Path)
        values = tuple(literal.value for literal in node.values)
        if not all(
            type(v) is str and as_number(v) is None and v.lower() not in ("true", "false") for v in values
        ):
            return None
        constant = self.bind("c", frozenset(values))
        check = "{v}.__class__ is " + self.bind("t", str)

        def slow(v: Any) -> bool:
            return any(equals(v, candidate) for candidate in values)

        code = self._typed(self.read(node.operand), check, f"_a in {constant}", slow)
        return f"(not {code})" if node.negated else code


def generate(
    node: Node, closure: Callable[[Any], bool], compile_node: Callable[[Node], Callable[[Any], bool]]
) -> Callable[[Mapping[str, Any]], bool]:
    """The generated-function form of ``node``, or ``closure`` itself when the tree is too big or too deep.

    :param node: the syntax tree
    :param closure: the closure form of the whole tree (the answer for records of odd shapes)
    :param compile_node: the closure compiler, for the parts the generator does not inline
    """
    size, depth = _size(node)
    if size > MAX_NODES or depth > MAX_NESTING or isinstance(node, Always):
        return closure
    emitter = _Emitter(compile_node)
    emitter.namespace["_fallback"] = closure
    body = emitter.emit(node)
    source = (
        "def _condition(record):\n"
        "    try:\n"
        f"        return {body}\n"
        "    except _Error:\n"
        "        return _fallback(record)\n"
    )
    # Safe: ``source`` holds only the templates above and generated names (see the module docstring).
    exec(compile(source, "<muxly-condition>", "exec"), emitter.namespace)  # noqa: S102
    function: Callable[[Mapping[str, Any]], bool] = emitter.namespace["_condition"]
    function.__doc__ = "A compiled Muxly condition."
    return function


def generate_many(
    nodes: Sequence[Node], compile_node: Callable[[Node], Callable[[Any], bool]]
) -> Callable[[Mapping[str, Any]], tuple[bool, ...]]:
    """One function answering several conditions at once (a route's rules): record -> tuple of booleans.

    One call per record instead of one per rule; each condition keeps exactly its own semantics.

    :param nodes: the syntax trees, in the order of the answers
    :param compile_node: the closure compiler
    """
    closures = tuple(compile_node(node) for node in nodes)

    def fallback(record: Any) -> tuple[bool, ...]:
        return tuple([closure(record) for closure in closures])

    emitter = _Emitter(compile_node)
    emitter.namespace["_fallback"] = fallback
    parts = []
    for node, closure in zip(nodes, closures, strict=True):
        size, depth = _size(node)
        if size > MAX_NODES or depth > MAX_NESTING:
            parts.append(f"{emitter.bind('f', closure)}(record)")
        else:
            parts.append(emitter.emit(node))
    source = (
        "def _conditions(record):\n"
        "    try:\n"
        f"        return ({''.join(part + ', ' for part in parts)})\n"
        "    except _Error:\n"
        "        return _fallback(record)\n"
    )
    # Safe: ``source`` holds only the templates above and generated names (see the module docstring).
    exec(compile(source, "<muxly-conditions>", "exec"), emitter.namespace)  # noqa: S102
    function: Callable[[Mapping[str, Any]], tuple[bool, ...]] = emitter.namespace["_conditions"]
    return function


ConditionEmitter = _Emitter
"""Emits conditions as expressions over the variable ``record`` into a shared namespace (``bind``, ``emit``)."""


def new_emitter(compile_node: Callable[[Node], Callable[[Any], bool]]) -> _Emitter:
    """An emitter for generated functions that inline conditions (see :mod:`muxly_provider.routing.route_codegen`).

    :param compile_node: the closure compiler, for the parts the generator does not inline
    """
    return _Emitter(compile_node)


def inline_condition(emitter: _Emitter, node: Node, closure: Callable[[Any], bool]) -> str:
    """The expression of ``node`` over ``record``, or a call of ``closure`` for a too big or too deep tree.

    The expression may raise for records of odd shapes; the caller then uses the closure forms.
    """
    size, depth = _size(node)
    if size > MAX_NODES or depth > MAX_NESTING:
        return f"{emitter.bind('f', closure)}(record)"
    return emitter.emit(node)
