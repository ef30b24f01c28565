"""Muxly's Jinja sandbox: :class:`jinja2.sandbox.ImmutableSandboxedEnvironment` plus size and work guards.

The stock sandbox already refuses attribute access to Python internals (``__class__``, ``mro``, ...) and any
mutation of lists and dicts, and caps ``range()`` at :data:`jinja2.sandbox.MAX_RANGE` items. It does not stop a
template from building huge values. Here every operation that can make a value much larger than its inputs is
checked against the current :class:`~muxly_provider.templating.budget.RenderBudget` before it runs:

* the operators ``*`` (strings, lists, big integers), ``**``, ``+`` and ``%`` (printf widths), and ``~``;
* the string methods that take a width or multiply their input (``center``, ``ljust``, ``rjust``, ``zfill``,
  ``expandtabs``, ``replace``, ``join``, ``translate``, ``format``);
* the filters that do the same (``center``, ``indent``, ``wordwrap``, ``replace``, ``join``, ``format``,
  ``batch``, ``slice``), and every filter that turns a value into text (``string``, ``tojson``, ...);
* every output, including the text of ``{% set %}`` blocks, macros and ``{% filter %}`` blocks, and every loop
  iteration (a step budget).

``lipsum`` is removed (it generates text of any size). Muxly's filters ``field``, ``as_text`` and
``path_param`` (:mod:`~muxly_provider.templating.filters`) are added, guarded like the others.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from muxly_provider.templating.budget import RenderBudget, TemplateLimitError, current_budget, estimate
from muxly_provider.templating.filters import FILTERS

MAX_ITEMS = 100_000
"""Largest item count a template may ask ``batch``/``slice`` for (as :data:`jinja2.sandbox.MAX_RANGE`)."""

_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_NUMBER = re.compile(r"\d+")

_CHARGED_FILTERS = frozenset(
    {
        "capitalize",
        "center",
        "e",
        "escape",
        "forceescape",
        "format",
        "indent",
        "join",
        "lower",
        "pprint",
        "replace",
        "safe",
        "string",
        "striptags",
        "title",
        "tojson",
        "trim",
        "truncate",
        "upper",
        "urlencode",
        "urlize",
        "wordwrap",
        "xmlattr",
    }
)
"""Filters that turn their value into text: their input is estimated before they run."""


def _text_size(budget: RenderBudget, value: Any) -> int:
    return estimate(value, budget.max_bytes)


def _check_printf(budget: RenderBudget, template: str, args: Any) -> None:
    for match in _PRINTF_SPEC.finditer(template):
        for number in match.groups():
            if number == "*":
                raise TemplateLimitError(
                    "'*' widths in % formatting are not allowed in templates", budget.field
                )
            if number is not None and int(number) > budget.max_bytes:
                raise budget.too_big("a % formatting width")
    budget.check_size(len(template) + _text_size(budget, args), "a % formatted string")


def _check_format_spec(budget: RenderBudget, template: str, args: Any) -> None:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return  # str.format reports the syntax error itself
    for _literal, _name, spec, _conversion in parsed:
        if not spec:
            continue
        if "{" in spec:
            raise TemplateLimitError(
                "nested fields in format specs are not allowed in templates", budget.field
            )
        if any(int(number) > budget.max_bytes for number in _NUMBER.findall(spec)):
            raise budget.too_big("a format width")
    budget.check_size(len(template) + _text_size(budget, args), "a formatted string")


def _joined_size(budget: RenderBudget, items: list[Any], separator: Any) -> int:
    size = max(len(items) - 1, 0) * _text_size(budget, separator)
    for item in items:
        size += _text_size(budget, item)
        if size > budget.max_bytes:
            break
    return size


def _check_str_method(budget: RenderBudget, text: Any, name: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Refuse a string method call whose result would be too big; return the (materialized) arguments."""
    size = len(text)
    if name in ("center", "ljust", "rjust", "zfill") and args and isinstance(args[0], int):
        budget.check_size(max(args[0], size))
    elif name == "expandtabs":
        tab = args[0] if args and isinstance(args[0], int) else 8
        budget.check_size(size + text.count("\t" if isinstance(text, str) else b"\t") * max(tab, 0))
    elif name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        count = text.count(old) if old else size + 1
        if len(args) >= 3 and isinstance(args[2], int) and args[2] >= 0:
            count = min(count, args[2])
        budget.check_size(size + count * max(len(new) - len(old), 0))
    elif name == "join" and args:
        items = list(args[0])
        budget.check_size(_joined_size(budget, items, text))
        return (items, *args[1:])
    elif name == "translate" and args and isinstance(args[0], dict):
        widest = max((_text_size(budget, value) for value in args[0].values()), default=1)
        budget.check_size(size * max(widest, 1))
    return args


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    passes_env = getattr(func, "jinja_pass_arg", None) is not None

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = current_budget()
        offset = 1 if passes_env else 0
        value = args[offset] if len(args) > offset else None
        rest = args[offset + 1 :]
        if name in _CHARGED_FILTERS:
            budget.check_size(_text_size(budget, value), f"the input of the {name!r} filter")
            budget.check_size(_text_size(budget, rest) + _text_size(budget, kwargs))
        text = value if isinstance(value, str) else ""
        if name == "center" and rest and isinstance(rest[0], int):
            budget.check_size(rest[0])
        elif name == "indent":
            width = rest[0] if rest else kwargs.get("width", 4)
            per_line = len(width) if isinstance(width, str) else int(width)
            budget.check_size(len(text) + (text.count("\n") + 1) * max(per_line, 0))
        elif name == "wordwrap":
            width = int(rest[0] if rest else kwargs.get("width", 79))
            wrap = rest[2] if len(rest) > 2 else kwargs.get("wrapstring") or "\n"
            budget.check_size(len(text) + (len(text) // max(width, 1) + 1) * len(str(wrap)))
        elif name == "replace" and len(rest) >= 2:
            _check_str_method(budget, text, "replace", tuple(str(a) for a in rest[:2]) + tuple(rest[2:]))
        elif name == "join":
            items = list(value) if value is not None else []
            args = (*args[:offset], items, *rest)
            budget.check_size(_joined_size(budget, items, rest[0] if rest else kwargs.get("d", "")))
        elif name == "format":
            _check_printf(budget, text, (rest, kwargs))
        elif name in ("batch", "slice") and rest and isinstance(rest[0], int) and rest[0] > MAX_ITEMS:
            raise TemplateLimitError(f"the {name!r} filter takes at most {MAX_ITEMS} items", budget.field)
        result = func(*args, **kwargs)
        if isinstance(result, str):
            budget.spend(len(result))
        return result

    return guarded


class _GuardedCodeGenerator(CodeGenerator):
    """Compiles templates so that every output and loop goes through the environment's guards."""

    def _output_child_to_const(self, node: nodes.Expr, frame: Frame, finalize: Any) -> str:
        # Nothing is output as a precomputed constant: static text goes through ``finalize`` too, so text
        # repeated by a loop or captured by a block is counted.
        raise nodes.Impossible()

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.muxly_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("), context.eval_ctx.autoescape)")

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        counted = nodes.Call(nodes.EnvironmentAttribute("muxly_loop"), [node.iter], [], None, None)
        counted.set_lineno(node.lineno)
        counted.set_environment(self.environment)
        guarded = nodes.For(
            node.target, counted, node.body, node.else_, node.test, node.recursive, lineno=node.lineno
        )
        guarded.set_environment(self.environment)
        super().visit_For(guarded, frame)


class MuxlySandboxedEnvironment(ImmutableSandboxedEnvironment):
    """The one Jinja environment of Muxly's templates (see the module docstring)."""

    code_generator_class = _GuardedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(finalize=self._finalize, **kwargs)
        self.globals.pop("lipsum", None)
        self.filters.update(FILTERS)
        self.filters = {name: _guard_filter(name, func) for name, func in self.filters.items()}

    @staticmethod
    def _finalize(value: Any) -> Any:
        budget = current_budget()
        budget.step()
        if value is not None and not isinstance(value, str):
            size = _text_size(budget, value)
            budget.check_size(size)
        else:
            size = len(value) if isinstance(value, str) else 4
        budget.spend(size)
        return value

    def muxly_loop(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """The iterable of a ``for`` loop, counting each iteration."""
        budget = current_budget()
        for item in iterable:
            budget.step()
            yield item

    def muxly_concat(self, values: tuple[Any, ...], autoescape: bool) -> str:
        """``a ~ b``, refused before joining when the result would be too big."""
        budget = current_budget()
        budget.check_size(sum(_text_size(budget, value) for value in values))
        result = Markup("").join(values) if autoescape else "".join(map(str, values))
        budget.spend(len(result))
        return result

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """``*``, ``**``, ``+`` and ``%`` with their results' sizes checked before they are computed."""
        budget = current_budget()
        if operator == "*":
            _check_multiply(budget, left, right)
        elif operator == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
                budget.check_size(right * abs(left).bit_length() // 3, "a power")
        elif operator == "+":
            if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
                budget.check_size(_text_size(budget, left) + _text_size(budget, right))
        elif operator == "%" and isinstance(left, str):
            _check_printf(budget, left, right)
        result = self.binop_table[operator](left, right)
        if isinstance(result, str):
            budget.spend(len(result))
        return result

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Call from a template, with the size of string methods' results checked first."""
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str | bytes) and not isinstance(owner, type):
            args = _check_str_method(current_budget(), owner, getattr(__obj, "__name__", ""), args)
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(result, str):
            current_budget().spend(len(result))
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format`` and ``str.format_map``, sandboxed by Jinja and with their widths checked."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        template = value.__self__

        def checked(*args: Any, **kwargs: Any) -> str:
            budget = current_budget()
            _check_format_spec(budget, template, (args, kwargs))
            result = wrapped(*args, **kwargs)
            budget.spend(len(result))
            return result

        return functools.update_wrapper(checked, value)


def _check_multiply(budget: RenderBudget, left: Any, right: Any) -> None:
    if isinstance(left, int) and not isinstance(left, bool) and isinstance(right, str | list | tuple | bytes):
        left, right = right, left
    if isinstance(left, str | list | tuple | bytes) and isinstance(right, int):
        budget.check_size(_text_size(budget, left) * max(right, 0))
    elif isinstance(left, int) and isinstance(right, int):
        budget.check_size((left.bit_length() + right.bit_length()) // 3, "a product")
