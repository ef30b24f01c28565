"""Templates that turn one record into text: the ``template`` of a ``format_string`` transformation.

The template is Jinja in Muxly's one environment, with the ``{{ path }}`` shorthand for record fields
(:mod:`.shorthands`); every printed value goes through ``as_text`` (``None`` and missing: empty, booleans
``true``/``false``, objects and lists compact JSON). Its context is the record's fields at the top level
plus ``record`` (the whole record).

Most templates are only text and field placeholders (``Order {{order_id}} from {{country}}``). Their
translation holds nothing but text and ``record | field(...)`` reads, so :class:`FieldTemplate` keeps them as
:attr:`FieldTemplate.parts` that the router joins in its generated code, with the same result as the Jinja
render and none of its per-record cost. Any other template renders through the environment for each record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from muxly_provider.routing.paths import Getter, compile_getter
from muxly_provider.templating import TemplateRenderError, compiled, render
from muxly_provider.templating.filters import as_text
from muxly_provider.templating.shorthands import Shorthands, scan

FIELDS = Shorthands(fields=True)
"""The shorthands of a record template: ``{{ path }}`` placeholders."""

__all__ = ["FIELDS", "FieldTemplate", "as_text", "compile_field_template"]


@dataclass(frozen=True)
class FieldTemplate:
    """A compiled record template.

    :param source: the template's text
    :param parts: text and field readers, when the template is only those (else ``None``)
    """

    source: str
    parts: tuple[str | Getter, ...] | None

    def render(self, record: Mapping[str, Any], field: str | None = None) -> str:
        """The text of ``record``.

        :raises TemplateRenderError: when the template fails on this record (naming the position, not values)
        """
        if self.parts is not None:
            return "".join(part if isinstance(part, str) else as_text(part(record)) for part in self.parts)
        context = {**record, "record": record} if isinstance(record, Mapping) else {"record": record}
        try:
            return render(self.source, context, field=field, shorthands=FIELDS)
        except TemplateRenderError as exc:
            reason = exc.reason
            if reason.startswith("template failed: "):
                # Keep the exception's type, drop its text: it may quote the record's values.
                reason = "template failed: " + reason.split(":")[1].strip()
            raise TemplateRenderError(reason, exc.field, exc.position) from None


@lru_cache(maxsize=512)
def compile_field_template(source: str) -> FieldTemplate:
    """Translate and compile ``source`` once (the parts of a plain template, or the Jinja template).

    :raises TemplateRenderError: with the reason and the position of a syntax error
    """
    parts: list[str | Getter] = []
    for piece in scan(source, FIELDS):
        if piece.kind == "text":
            parts.append(piece.text)
        elif piece.kind == "field":
            parts.append(compile_getter(piece.path))
        else:
            compiled(source, FIELDS)
            return FieldTemplate(source, None)
    return FieldTemplate(source, tuple(parts))
