"""Every template of Muxly renders here: in one sandboxed Jinja environment, with a bounded output.

Used by the runtime (``action_params``, notification messages), by connectors (an api connector's settings,
``{name}`` path parameters), by ``format_string`` transformations (:mod:`.records`) and by destinations
(subjects, bodies, keys, URLs): one environment,
:class:`~muxly_provider.templating.sandbox.MuxlySandboxedEnvironment`. Muxly's older notations (``${DATE}``,
``{name}``, ``{{ first name }}``) are shorthands that :mod:`.shorthands` translates into Jinja before it is
compiled (``docs/templates.md``). The rules (``docs/security.md``):

* the context is only what the caller passes (for ``action_params``:
  :func:`muxly_provider.runtime.variables.template_variables`); Airflow's ``conn``, ``var``, ``ti``, ``task``
  and ``macros`` are never in it, and object internals (``__class__``, ...) are refused;
* the rendered output of one template (all the strings of a JSON template together) is at most
  ``[muxly] template_max_bytes`` (default 1 MiB); operations that would build a bigger value are refused
  before they allocate it, and one render may produce at most 16 times that much text in all and run at most
  1,000,000 loop iterations and outputs;
* every failure is a :class:`TemplateRenderError` (a :class:`~muxly_provider.exceptions.MuxlyError`) naming
  the field when the caller gives it and the position (line, and column for syntax errors), never the values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from types import TracebackType
from typing import Any

from jinja2 import TemplateSyntaxError

from muxly_provider.templating.budget import (
    DEFAULT_MAX_BYTES,
    RenderBudget,
    TemplateLimitError,
    TemplateRenderError,
    budget_scope,
    estimate,
    template_max_bytes,
)
from muxly_provider.templating.sandbox import MuxlySandboxedEnvironment
from muxly_provider.templating.shorthands import JINJA, Shorthands, translate, translate_ast, wrap_outputs

__all__ = [
    "DEFAULT_MAX_BYTES",
    "JINJA",
    "Shorthands",
    "TemplateLimitError",
    "TemplateRenderError",
    "check_template",
    "check_templates",
    "compiled",
    "render",
    "render_value",
    "template_max_bytes",
    "template_problems",
]

_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\}\}|\{\{).)+)\}\}\s*$", re.DOTALL)


@lru_cache(maxsize=2)
def _environment(autoescape: bool) -> MuxlySandboxedEnvironment:
    env = MuxlySandboxedEnvironment(autoescape=autoescape, keep_trailing_newline=True)
    env.policies["json.dumps_kwargs"] = {"sort_keys": False, "default": str}
    return env


@lru_cache(maxsize=1024)
def compiled(source: str, shorthands: Shorthands = JINJA, autoescape: bool = False) -> Any:
    """The compiled template of ``source``, its shorthands translated first (both cached).

    :raises TemplateRenderError: with the reason and the position of a syntax error
    """
    env = _environment(autoescape)
    try:
        if not shorthands.jinja:
            tree = translate_ast(source, shorthands)
        elif shorthands.fields:
            tree = wrap_outputs(env.parse(translated(source, shorthands)))
        else:
            return env.from_string(source if shorthands == JINJA else translated(source, shorthands))
        return env.template_class.from_code(env, env.compile(tree), env.make_globals(None), None)
    except TemplateSyntaxError as exc:
        raise _syntax_error(exc, source, None) from None
    except RecursionError:  # Jinja's parser recurses per nesting level
        raise TemplateLimitError("the template nests too deeply to compile") from None


@lru_cache(maxsize=1024)
def translated(source: str, shorthands: Shorthands) -> str:
    """:func:`~muxly_provider.templating.shorthands.translate`, cached."""
    return translate(source, shorthands)


_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)


def _syntax_error(exc: TemplateSyntaxError, source: str, field: str | None) -> TemplateRenderError:
    """A syntax error at its line, and at the column of the first tag of that line that fails alone."""
    line = exc.lineno or 1
    position = f"line {line}"
    lines = source.split("\n")
    if 0 < line <= len(lines):
        env = _environment(False)
        for tag in _TAG.finditer(lines[line - 1]):
            if not tag.group().startswith("{{"):
                continue
            try:
                env.parse(tag.group())
            except TemplateSyntaxError:
                position = f"line {line}, column {tag.start() + 1}"
                break
    return TemplateRenderError(f"invalid template: {exc.message}", field, position)


def _template_line(traceback: TracebackType | None) -> str | None:
    """The template line of the innermost template frame of ``traceback`` (Jinja maps them to ``<template>``)."""
    line = None
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == "<template>":
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return f"line {line}" if line else None


def _failure(exc: BaseException, field: str | None, source: str = "") -> TemplateRenderError:
    if isinstance(exc, TemplateRenderError):
        return exc.located(field, _template_line(exc.__traceback__))
    if isinstance(exc, TemplateSyntaxError):
        return _syntax_error(exc, source, field)
    position = _template_line(exc.__traceback__)
    if isinstance(exc, RecursionError | MemoryError):
        return TemplateLimitError(
            f"{type(exc).__name__}: the template nests or recurses too deeply", field, position
        )
    detail = str(exc)
    detail = detail if len(detail) <= 200 else detail[:200] + "..."
    return TemplateRenderError(f"template failed: {type(exc).__name__}: {detail}", field, position)


def check_template(source: str, *, field: str | None = None, shorthands: Shorthands = JINJA) -> None:
    """Compile ``source`` once, so a bad template is reported before the first record (or at write time).

    :raises TemplateRenderError: with the reason and the position
    """
    try:
        compiled(source, shorthands)
    except TemplateRenderError as exc:
        raise exc.located(field, None) from None


def check_templates(value: Any, field: str) -> None:
    """Compile every string of a JSON template (dicts and lists walked); errors name the string's path.

    :param value: the JSON value
    :param field: the path of ``value`` (``action_params``, ``config.body_template``)
    :raises TemplateRenderError: at the first invalid template
    """
    if isinstance(value, str):
        if "{{" in value or "{%" in value or "{#" in value:
            check_template(value, field=field)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_templates(item, f"{field}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_templates(item, f"{field}[{index}]")


TEMPLATE_OPTIONS: Mapping[str, tuple[str, tuple[str, ...] | None]] = {
    "scheduler_jobs": ("action_params", None),
    "destinations": (
        "config",
        ("url", "headers", "body_template", "subject_template", "message_template", "key_template"),
    ),
    "connectors": (
        "connection_settings",
        ("base_url", "headers", "query_params", "path_params", "body_template"),
    ),
}
"""The templates of each table: its JSON column, and the options that are templates (``None``: every string)."""


def template_problems(table: str, row: Mapping[str, Any]) -> list[TemplateRenderError]:
    """The syntax errors of the templates of ``row`` (checked when a row is written, not at every parse).

    :param table: the row's table
    :param row: the row, JSON columns parsed
    :returns: one error per invalid template, each naming its field (``action_params.data_spec.query``) and,
        in its ``reason``, the position
    """
    column, options = TEMPLATE_OPTIONS.get(table, ("", ()))
    value = row.get(column) if column else None
    if not isinstance(value, Mapping):
        return []
    problems: list[TemplateRenderError] = []
    for key, item in value.items():
        if options is not None and key not in options:
            continue
        try:
            check_templates(item, f"{column}.{key}")
        except TemplateRenderError as exc:
            # Callers report ``reason`` alone (a 422 per field): it carries the position too.
            where = f" at {exc.position}" if exc.position else ""
            problems.append(type(exc)(f"{exc.reason}{where}", exc.field, exc.position))
    return problems


def _stream(
    source: str, context: Mapping[str, Any], html: bool, budget: RenderBudget, shorthands: Shorthands
) -> str:
    template = compiled(source, shorthands, html)
    parts: list[str] = []
    for chunk in template.generate(context):
        budget.output += len(chunk.encode("utf-8", "surrogatepass"))
        budget.check_size(budget.output)
        parts.append(chunk)
    return "".join(parts)


def render(
    source: str,
    context: Mapping[str, Any],
    *,
    html: bool = False,
    field: str | None = None,
    shorthands: Shorthands = JINJA,
) -> str:
    """Render ``source`` with ``context``; ``html=True`` escapes values for HTML bodies.

    :param field: the field holding the template, named in errors
    :param shorthands: the shorthands ``source`` may use besides Jinja (:mod:`.shorthands`)
    :raises TemplateRenderError: when the template is invalid, fails, or passes a limit
    """
    try:
        with budget_scope(field) as budget:
            return _stream(source, context, html, budget, shorthands)
    except Exception as exc:
        raise _failure(exc, field, source) from None


@lru_cache(maxsize=512)
def _compiled_expression(expr: str) -> Any:
    return _environment(False).compile_expression(expr)


def _expression(expr: str, context: Mapping[str, Any], budget: RenderBudget) -> Any:
    value = _compiled_expression(expr)(**context)
    if any(value is known for known in context.values()):
        return value  # a variable passed through as it is: nothing was built
    budget.output += estimate(value, budget.max_bytes)
    budget.check_size(budget.output)
    return value


def render_value(
    template: Any,
    context: Mapping[str, Any],
    *,
    field: str | None = None,
    native: bool = True,
    shorthands: Shorthands = JINJA,
) -> Any:
    """Render a JSON template: every string inside dicts and lists is rendered (one budget for all of them).

    With ``native`` a string that is exactly one placeholder (``"{{records}}"``, ``"{{ amount }}"``) becomes
    the value itself (a list, a number, ...) instead of its text, so JSON bodies keep their types. Strings
    without template syntax are kept as they are.

    :param field: the path of ``template``, named in errors (``action_params``)
    :param shorthands: the shorthands its strings may use besides Jinja (:mod:`.shorthands`)
    :raises TemplateRenderError: naming the path of the string that failed
    """
    with budget_scope(field):
        return _render_value(template, context, field, native, shorthands)


def _render_value(
    template: Any, context: Mapping[str, Any], field: str | None, native: bool, shorthands: Shorthands
) -> Any:
    if isinstance(template, str):
        if not shorthands.marked(template):
            return template
        match = None
        if native and shorthands.jinja:
            text = template if shorthands == JINJA else translated(template, shorthands)
            match = _SINGLE_EXPRESSION.match(text)
        if match is None:
            return render(template, context, field=field, shorthands=shorthands)
        try:
            with budget_scope(field) as budget:
                return _expression(match.group("expr").strip(), context, budget)
        except Exception as exc:
            raise _failure(exc, field, template) from None
    if isinstance(template, Mapping):
        return {
            str(key): _render_value(value, context, _join(field, str(key)), native, shorthands)
            for key, value in template.items()
        }
    if isinstance(template, list):
        return [
            _render_value(item, context, f"{field or ''}[{index}]", native, shorthands)
            for index, item in enumerate(template)
        ]
    return template


def _join(field: str | None, key: str) -> str:
    return f"{field}.{key}" if field else key
