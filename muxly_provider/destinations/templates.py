"""Templates of destinations (subjects, bodies, messages, keys), rendered in a sandboxed Jinja environment.

Placeholders are Jinja expressions: ``{{connector_id}}``, ``{{date}}``, ``{{count}}``, record fields
(``{{customer_name}}``, ``{{user.country}}``) and the names of ``template_variables`` (name -> path into the
record). The sandbox (:class:`jinja2.sandbox.ImmutableSandboxedEnvironment`) refuses attribute access to
Python internals and any mutation, so a template written by a config author cannot run code on a worker.

Variables of every template (:func:`template_context`):

``connector_id``, ``job_id``, ``dag_id``, ``run_id``, ``run_key``, ``destination_id``, ``destination_name``,
``date`` (``YYYY-MM-DD`` of the run's logical date), ``timestamp`` (``YYYYMMDD_HHMMSS``), ``logical_date``
(ISO 8601), ``count`` (records in the batch), ``records`` (the batch), ``record`` (the record; in a batch
template the first one), ``batch`` (0-based batch number), the fields of ``record`` at the top level, and the
``template_variables``. Missing names render as an empty string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from jinja2 import TemplateError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from muxly_provider.destinations.base import RunInfo

_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\}\}|\{\{).)+)\}\}\s*$", re.DOTALL)


class TemplateRenderError(ValueError):
    """A template cannot be compiled or rendered (the message says where, never the values)."""


@lru_cache(maxsize=2)
def _environment(autoescape: bool) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(autoescape=autoescape, keep_trailing_newline=True)
    env.policies["json.dumps_kwargs"] = {"sort_keys": False, "default": str}
    return env


@lru_cache(maxsize=512)
def _compiled(source: str, autoescape: bool) -> Any:
    try:
        return _environment(autoescape).from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateRenderError(f"invalid template: {exc.message} (line {exc.lineno})") from None


def check_template(source: str) -> None:
    """Compile ``source`` once, so a bad template is reported before the first record.

    :raises TemplateRenderError: with the reason and line
    """
    _compiled(source, False)


def render(source: str, context: Mapping[str, Any], *, html: bool = False) -> str:
    """Render ``source`` with ``context``; ``html=True`` escapes values for HTML bodies.

    :raises TemplateRenderError: when the template is invalid or fails (for example a sandbox violation)
    """
    template = _compiled(source, html)
    try:
        return str(template.render(context))
    except TemplateError as exc:
        raise TemplateRenderError(f"template failed: {type(exc).__name__}: {exc}") from None


def render_value(template: Any, context: Mapping[str, Any]) -> Any:
    """Render a JSON template: every string inside dicts and lists is rendered.

    A string that is exactly one placeholder (``"{{records}}"``, ``"{{ amount }}"``) becomes the value itself
    (a list, a number, ...) instead of its text, so JSON bodies keep their types.
    """
    if isinstance(template, str):
        match = _SINGLE_EXPRESSION.match(template)
        if match is None:
            return render(template, context)
        try:
            expression = _environment(False).compile_expression(match.group("expr").strip())
            return expression(**context)
        except TemplateSyntaxError as exc:
            raise TemplateRenderError(f"invalid template: {exc.message}") from None
        except TemplateError as exc:
            raise TemplateRenderError(f"template failed: {type(exc).__name__}: {exc}") from None
    if isinstance(template, Mapping):
        return {str(key): render_value(value, context) for key, value in template.items()}
    if isinstance(template, list):
        return [render_value(item, context) for item in template]
    return template


def template_context(
    run: RunInfo,
    *,
    destination_id: str,
    destination_name: str = "",
    records: Sequence[Mapping[str, Any]] = (),
    record: Mapping[str, Any] | None = None,
    batch: int = 0,
    variables: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The variables of a template (see the module docstring).

    :param run: the run being delivered
    :param destination_id: the destination's id
    :param destination_name: the destination's name
    :param records: the batch
    :param record: the record of a per-record template (default: the batch's first record)
    :param batch: the batch number
    :param variables: ``template_variables``: name -> path into ``record``
    :param extra: more variables (they win over everything else)
    """
    from muxly_provider.routing.paths import MISSING, PathError, get_path

    current = record if record is not None else (records[0] if records else {})
    context: dict[str, Any] = dict(current) if isinstance(current, Mapping) else {}
    when = run.logical_date
    context.update(
        connector_id=run.connector_id,
        job_id=run.job_id,
        dag_id=run.dag_id,
        run_id=run.run_id,
        run_key=run.run_key,
        destination_id=destination_id,
        destination_name=destination_name,
        date=when.strftime("%Y-%m-%d"),
        timestamp=when.strftime("%Y%m%d_%H%M%S"),
        logical_date=when.isoformat(),
        count=len(records) if record is None else 1,
        records=list(records) if record is None else [record],
        record=current,
        batch=batch,
    )
    for name, path in (variables or {}).items():
        try:
            value = get_path(current, path)
        except PathError:
            value = None
        context[name] = None if value is MISSING else value
    if extra:
        context.update(extra)
    return context
