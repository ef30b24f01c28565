"""The ``formula`` transformation: arithmetic over fields, compiled from the parsed tree (never ``eval``).

``{"output_field": "discount", "formula": "round(price * discount_rate, 2)"}`` sets ``discount``. The syntax is
in :mod:`muxly_provider.routing.formula_parser`; the semantics:

* operands are numbers (int, float, ``Decimal`` from databases) or **numeric strings** (``'12.5'``, the same
  JSON-number syntax as the condition language); booleans, null, missing fields, lists, objects and other
  strings fail the record with an error naming the field;
* ``+ - * %`` and ``**`` follow Python (``%`` takes the sign of the divisor), ``/`` always divides exactly
  (``7 / 2`` is ``3.5``, ``6 / 3`` is ``2.0``); dividing by zero fails the record naming the divisor; a
  ``Decimal`` mixed with a float computes in float;
* functions: ``abs(x)``, ``round(x)`` (to an integer) and ``round(x, digits)``, both rounding half away from
  zero like spreadsheets (``round(2.5)`` is 3, ``round(2.675, 2)`` is 2.68); ``floor(x)``, ``ceil(x)`` (integers);
  ``min(a, b, ...)``, ``max(a, b, ...)``; ``coalesce(a, b, ...)``: the first argument that is present and not
  null (``coalesce(discount, 0)``);
* a result that is not a finite number (overflow) fails the record.

Formulas are compiled twice from the same tree: into closures (the reference, which raises the precise
per-record error) and into one generated Python expression built from fixed templates and generated names only
(keys and constants are passed through the namespace, as in
:mod:`muxly_provider.routing.condition_codegen`). The generated form runs first; on any exception the closure
form recomputes the value and raises the precise error. Formulas too big for Python's compiler (more than
:data:`MAX_GENERATED_NODES` nodes) run in the closure form only, which handles chains of any length in a loop.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Context, Decimal
from itertools import count
from typing import Any, Final

from muxly_provider.exceptions import MuxlyConfigError
from muxly_provider.routing.condition_values import as_number
from muxly_provider.routing.formula_parser import (
    BinOp,
    Call,
    Chain,
    Expr,
    Field,
    FormulaSyntaxError,
    Neg,
    Num,
    parse_formula,
    unparse_formula,
)
from muxly_provider.routing.paths import MISSING, compile_getter
from muxly_provider.routing.route_specs import TransformationSpec
from muxly_provider.routing.transform_steps import MapStep, Record, StepFailure, set_or_fail, step_path

__all__ = ["FormulaSyntaxError", "compile_formula", "formula_step"]

Evaluator = Callable[[Any], Any]
"""A compiled formula or sub-formula: record -> number (raising :class:`StepFailure`)."""

Bind = Callable[[str, Any], str]
"""Puts a value into a generated function's namespace and returns its generated name."""

MAX_GENERATED_NODES: Final = 200
"""Formulas with more nodes than this are not turned into generated code (CPython's compiler recurses on long
``a + b + ...`` chains); they run in the closure form, which gives the same results."""

_MAX_POWER_BITS: Final = 1 << 16
_ROUNDING: Final = Context(prec=1000, rounding=ROUND_HALF_UP)
_NUMBER_TYPES: Final = (int, float)


def _mod(a: Any, b: Any) -> Any:
    """``a % b`` with the sign of the divisor for every number type, as docs/routing.md says.

    Python's ``%`` already does so for int and float; ``Decimal``'s keeps the sign of the dividend
    (``Decimal(-7) % 3`` is ``-1``), so its remainder is moved into the divisor's range (``2``, like ``-7 % 3``).
    """
    if not b:
        raise ZeroDivisionError  # Decimal raises InvalidOperation instead
    result = a % b
    if type(result) is Decimal and result and (result < 0) != (b < 0):
        result += b
    return result


_PY_OPS: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "%": _mod,
}


def _coerce(value: Any, name: str) -> Any:
    """``value`` as a number, or :class:`StepFailure` naming the field ``name``."""
    kind = type(value)
    if kind is int or kind is float or kind is Decimal:
        return value
    if value is MISSING:
        raise StepFailure(f"formula: field {name!r} is missing")
    if value is None:
        raise StepFailure(f"formula: field {name!r} is null, not a number")
    if isinstance(value, bool):
        raise StepFailure(f"formula: field {name!r} is a boolean, not a number")
    if isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, str):
        number = as_number(value)
        if number is not None:
            return number
    raise StepFailure(f"formula: field {name!r} is not a number")


def _power(base: Any, exponent: Any) -> Any:
    # Exact integer powers while the result stays small; float (or an out-of-range error) beyond.
    if (
        type(base) is int
        and type(exponent) is int
        and 0 <= max(base.bit_length(), 1) * exponent <= _MAX_POWER_BITS
    ):
        return base**exponent
    try:
        return math.pow(float(base), float(exponent))
    except ValueError:
        raise StepFailure("formula: '**' gives no real number for these operands") from None


def _arith(op: str, a: Any, b: Any, right_text: str) -> Any:
    try:
        if op == "**":
            return _power(a, b)
        try:
            return _PY_OPS[op](a, b)
        except TypeError:  # a Decimal with a float
            return _PY_OPS[op](float(a), float(b))
    except ZeroDivisionError:
        raise StepFailure(f"formula: division by zero ({right_text!r} is 0)") from None
    except ArithmeticError:
        raise StepFailure(f"formula: the result of {op!r} is out of range") from None


def _round(value: Any, digits: Any = None) -> Any:
    if digits is not None:
        if isinstance(digits, float) and digits.is_integer():
            digits = int(digits)
        if type(digits) is not int or not -100 <= digits <= 100:
            raise StepFailure("formula: round() needs a whole number of digits between -100 and 100")
    places = digits or 0
    if type(value) is int and places >= 0:
        return value
    exact = value if isinstance(value, Decimal) else Decimal(repr(float(value)))
    try:
        rounded = exact.quantize(Decimal(1).scaleb(-places), context=_ROUNDING)
    except ArithmeticError:
        raise StepFailure("formula: round() of a value that is not finite or too large") from None
    if digits is None or type(value) is int:
        return int(rounded)
    return rounded if isinstance(value, Decimal) else float(rounded)


def _integral(function: Callable[[Any], int], name: str) -> Callable[[Any], int]:
    def run(value: Any) -> int:
        try:
            return function(value)
        except (ArithmeticError, ValueError):
            raise StepFailure(f"formula: {name}() of a value that is not finite") from None

    return run


def _extreme(function: Callable[..., Any], name: str) -> Callable[..., Any]:
    def run(*values: Any) -> Any:
        try:
            return function(*values) if len(values) > 1 else values[0]
        except (TypeError, ArithmeticError):
            raise StepFailure(f"formula: {name}() of values that do not compare") from None

    return run


_FUNCTIONS: Final[dict[str, Callable[..., Any]]] = {
    "abs": abs,
    "round": _round,
    "floor": _integral(math.floor, "floor"),
    "ceil": _integral(math.ceil, "ceil"),
    "min": _extreme(min, "min"),
    "max": _extreme(max, "max"),
}


def _finite(value: Any) -> Any:
    """The final value of a formula: a finite number, else :class:`StepFailure`."""
    if (type(value) is float and not math.isfinite(value)) or (
        isinstance(value, Decimal) and not value.is_finite()
    ):
        raise StepFailure("formula: the result is not a finite number")
    return value


def _field_reader(node: Field) -> Evaluator:
    get = compile_getter(node.segments)
    name = node.text
    return lambda record: _coerce(get(record), name)


def _coalesce(node: Call) -> Evaluator:
    candidates: list[tuple[Callable[[Any], Any] | None, Evaluator]] = []
    for arg in node.args:
        raw = compile_getter(arg.segments) if isinstance(arg, Field) else None
        candidates.append((raw, compile_expr(arg)))
    names = ", ".join(unparse_formula(a) for a in node.args)

    def run(record: Any) -> Any:
        for raw, evaluate in candidates:
            if raw is not None:
                value = raw(record)
                if value is MISSING or value is None:
                    continue
            return evaluate(record)
        raise StepFailure(f"formula: coalesce({names}): every argument is missing or null")

    return run


def _text(node: Expr) -> str:
    return unparse_formula(node).removeprefix("(").removesuffix(")")


def _chain(node: Chain) -> Evaluator:
    first = compile_expr(node.first)
    rest = tuple((op, compile_expr(operand), _text(operand)) for op, operand in node.rest)

    def run(record: Any) -> Any:
        value = first(record)
        for op, operand, text in rest:
            value = _arith(op, value, operand(record), text)
        return value

    return run


def _small(node: Expr) -> bool:
    """Whether ``node`` has at most :data:`MAX_GENERATED_NODES` nodes (counted without recursion)."""
    pending: list[Expr] = [node]
    seen = 0
    while pending:
        seen += 1
        if seen > MAX_GENERATED_NODES:
            return False
        current = pending.pop()
        if isinstance(current, Neg):
            pending.append(current.operand)
        elif isinstance(current, BinOp):
            pending.extend((current.left, current.right))
        elif isinstance(current, Chain):
            pending.append(current.first)
            pending.extend(operand for _, operand in current.rest)
        elif isinstance(current, Call):
            pending.extend(current.args)
    return True


def compile_expr(node: Expr) -> Evaluator:
    """The closure form of a formula tree (the reference semantics; raises :class:`StepFailure`).

    :param node: a tree from :func:`~muxly_provider.routing.formula_parser.parse_formula`
    """
    if isinstance(node, Num):
        value = node.value
        return lambda record: value
    if isinstance(node, Field):
        return _field_reader(node)
    if isinstance(node, Neg):
        inner = compile_expr(node.operand)
        return lambda record: -inner(record)
    if isinstance(node, BinOp):
        left, right = compile_expr(node.left), compile_expr(node.right)
        op, right_text = node.op, _text(node.right)
        return lambda record: _arith(op, left(record), right(record), right_text)
    if isinstance(node, Chain):
        return _chain(node)
    if node.name == "coalesce":
        return _coalesce(node)
    function = _FUNCTIONS[node.name]
    args = tuple(compile_expr(arg) for arg in node.args)
    return lambda record: function(*(arg(record) for arg in args))


def formula_source(node: Expr, bind: Bind) -> str:
    """A Python expression computing ``node`` from the variable ``record`` (finite check included).

    Built only from fixed templates and names returned by ``bind``. It may raise any exception where the
    closure form raises :class:`StepFailure` (the caller then runs the closure form for the precise error).

    :param node: the formula tree
    :param bind: puts a value in the generated function's namespace and returns its name
    """
    temps = count()
    number_types = bind("nt", _NUMBER_TYPES)

    def emit(expr: Expr) -> str:
        if isinstance(expr, Num):
            return bind("n", expr.value)
        if isinstance(expr, Field):
            temp = f"_v{next(temps)}"
            if len(expr.segments) == 1 and isinstance(expr.segments[0], str):
                read = f"record.get({bind('k', expr.segments[0])}, {bind('M', MISSING)})"
            else:
                read = f"{bind('g', compile_getter(expr.segments))}(record)"
            coerce = bind("c", lambda value, name=expr.text: _coerce(value, name))
            return f"({temp} if ({temp} := {read}).__class__ in {number_types} else {coerce}({temp}))"
        if isinstance(expr, Neg):
            return f"(-{emit(expr.operand)})"
        if isinstance(expr, BinOp):
            if expr.op in {"**", "%"}:
                function = _power if expr.op == "**" else _mod
                return f"{bind('p', function)}({emit(expr.left)}, {emit(expr.right)})"
            return f"({emit(expr.left)} {expr.op} {emit(expr.right)})"
        if isinstance(expr, Chain):
            if any(op == "%" for op, _ in expr.rest):
                # Python's ``%`` on a Decimal keeps the dividend's sign: the closure form applies ``_mod``.
                return f"{bind('e', compile_expr(expr))}(record)"
            parts = [emit(expr.first)]
            for op, operand in expr.rest:
                parts.append(f"{op} {emit(operand)}")
            return f"({' '.join(parts)})"
        if expr.name == "coalesce":
            return f"{bind('e', compile_expr(expr))}(record)"
        args = ", ".join(emit(arg) for arg in expr.args)
        return f"{bind('f', _FUNCTIONS[expr.name])}({args})"

    body = emit(node)
    return f"((_r if (_r := {body}).__class__ is {bind('int', int)} else {bind('fin', _finite)}(_r)))"


def compile_formula(text: str) -> Evaluator:
    """A function computing the formula ``text`` for a record (generated code, closure fallback).

    :param text: the formula
    :raises FormulaSyntaxError: when it is not a valid formula
    """
    node = parse_formula(text)
    closure = compile_expr(node)

    def checked(record: Any) -> Any:
        return _finite(closure(record))

    if not _small(node):
        return checked
    namespace: dict[str, Any] = {"__builtins__": {}, "_Error": Exception}

    def bind(prefix: str, value: Any) -> str:
        name = f"_{prefix}{len(namespace)}"
        namespace[name] = value
        return name

    slow = bind("slow", checked)
    source = (
        "def _formula(record):\n"
        "    try:\n"
        f"        return {formula_source(node, bind)}\n"
        "    except _Error:\n"
        f"        return {slow}(record)\n"
    )
    # Safe: ``source`` holds only the templates above and names from ``bind`` (see the module docstring).
    exec(compile(source, "<muxly-formula>", "exec"), namespace)  # noqa: S102
    function: Evaluator = namespace["_formula"]
    return function


def formula_step(spec: TransformationSpec) -> MapStep:
    """The ``formula`` factory: ``{"output_field", "formula"}`` (see the module docstring).

    :raises MuxlyConfigError: when ``formula`` is not a valid formula (with the position) or a key is missing
    """
    text = spec.config.get("formula")
    if not isinstance(text, str) or not text.strip():
        raise MuxlyConfigError("rule_transformations", spec.id, "config.formula", "a non-empty formula")
    target = step_path(spec, "output_field")
    try:
        node = parse_formula(text)
    except FormulaSyntaxError as exc:
        raise MuxlyConfigError(
            "rule_transformations",
            spec.id,
            "config.formula",
            f"a valid formula: {exc.message} at position {exc.position}",
        ) from exc
    evaluate = compile_formula(text)

    def apply(record: Record) -> Record:
        return set_or_fail(record, target, evaluate(record))

    def inline(bind: Bind) -> list[str]:
        return [f"record[{bind('k', target[0])}] = {formula_source(node, bind)}"]

    top_level = len(target) == 1 and isinstance(target[0], str)
    return MapStep(apply, inline if top_level and _small(node) else None)
