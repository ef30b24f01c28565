"""Muxly's shorthands, translated into Jinja before the one environment compiles a template.

Three notations of the original Muxly stay accepted where they were (``docs/templates.md``):

* ``${NAME}``: a variable of the template's context, for the names a caller lists (Muxly's date variables in
  ``action_params``, a connector's ``variables`` and ``run_params``, a notification's fields). It becomes
  ``{{ NAME }}``; a ``${NAME}`` whose name is not listed stays as it is written.
* ``{name}``: an api connector's path parameter in ``base_url``. It becomes
  ``{{ path_params | path_param('name') }}`` (URL-quoted; a missing parameter is an error).
* ``{{ path }}`` in ``format_string``: a record field path (``{{first name}}``, ``{{user-agent}}``,
  ``{{$.items[0].sku}}``) becomes ``{{ record | field('path') }}``. A placeholder is a path when it holds no
  Jinja operator (``| ( ) + * / % ~ , = < > ! " '`` or ``{ }`` outside brackets), no Jinja keyword
  (``and or not in is if else``) as a word, and does not start with ``loop`` or a name the template binds
  (``{% for x in ... %}``, ``{% set x %}``, ``{% with x = ... %}``, macro arguments): anything else is a
  Jinja expression.

Shorthands are recognised in the text of a template, never inside Jinja's own ``{{ }}``, ``{% %}`` and
``{# #}`` tags (there the variables are read by name) nor inside ``{% raw %}``. With ``jinja=False`` (the
``resolve`` helper) only the shorthands are template syntax: every other character is literal text. A
translation is computed once per template text and kept (with the compiled template) in a cache.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from jinja2 import nodes

from muxly_provider.routing.paths import PathError, Segment, parse_path

PieceKind = Literal["text", "tag", "variable", "param", "field"]

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TAG_START = re.compile(r"\{[{%#]")
_TAG_END = {"{": "}}", "%": "%}", "#": "#}"}
_RAW = re.compile(r"\{%[-+]?\s*raw\s*[-+]?%\}")
_ENDRAW = re.compile(r"\{%[-+]?\s*endraw\s*[-+]?%\}")
_JINJA_ONLY = frozenset("|()+*/%~,=<>!\"'{}")
_KEYWORDS = frozenset({"and", "or", "not", "in", "is", "if", "else"})
_STATEMENT = re.compile(r"\{%[-+]?\s*(for|set|with|macro|call)\b(.*?)[-+]?%\}", re.DOTALL)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _first_names(parts: list[str]) -> list[str]:
    """The name before ``=`` (or alone) of each part: ``a=1`` -> ``a``."""
    return [found[0] for part in parts if (found := _NAME.findall(part.split("=", 1)[0]))]


def bound_names(source: str) -> frozenset[str]:
    """The names a template's statements bind: loop targets, ``set``/``with`` targets, macro arguments."""
    names = {"loop"}
    for match in _STATEMENT.finditer(source):
        keyword, rest = match.group(1), match.group(2)
        if keyword == "for":
            names.update(_NAME.findall(rest.split(" in ", 1)[0]))
        elif keyword == "set":
            names.update(_NAME.findall(rest.split("=", 1)[0]))
        elif keyword == "with":
            names.update(_first_names(rest.split(",")))
        else:  # macro name(a, b=1) / call(a) name(...)
            arguments = rest[rest.find("(") + 1 : rest.find(")")] if "(" in rest else ""
            names.update(_first_names(arguments.split(",")))
    return frozenset(names)


@dataclass(frozen=True)
class Shorthands:
    """Which shorthands a template accepts besides Jinja.

    :param variables: the names ``${NAME}`` may read (others stay as written)
    :param placeholders: the variable holding the values of ``{name}`` placeholders (``None``: not accepted)
    :param fields: ``{{ path }}`` placeholders read record field paths, and every printed value goes through
        the ``as_text`` filter (``format_string``)
    :param jinja: whether the rest of the text is Jinja (``False``: literal text)
    """

    variables: frozenset[str] = field(default_factory=frozenset)
    placeholders: str | None = None
    fields: bool = False
    jinja: bool = True

    def marked(self, text: str) -> bool:
        """Whether ``text`` may hold template syntax at all (texts without it are used as they are)."""
        if self.jinja and ("{{" in text or "{%" in text or "{#" in text):
            return True
        if self.variables and "${" in text:
            return True
        return self.placeholders is not None and "{" in text


JINJA = Shorthands()
"""Plain Jinja: no shorthand."""


@dataclass(frozen=True)
class Piece:
    """One piece of a template's text: literal text, a Jinja tag, or a shorthand (with its offset)."""

    kind: PieceKind
    text: str
    offset: int
    path: tuple[Segment, ...] = ()


def _tag_end(source: str, start: int) -> int:
    """The offset after the Jinja tag (or raw block) opening at ``start``; the end of ``source`` if unclosed."""
    raw = _RAW.match(source, start)
    if raw:
        endraw = _ENDRAW.search(source, raw.end())
        return endraw.end() if endraw else len(source)
    closing = _TAG_END[source[start + 1]]
    end = source.find(closing, start + 2)
    return len(source) if end < 0 else end + 2


def is_field_path(inner: str, bound: frozenset[str] = frozenset()) -> tuple[Segment, ...] | None:
    """The segments of a ``format_string`` placeholder's content when it is a field path, else ``None``.

    :param bound: the names the template binds (:func:`bound_names`): a path starting with one is Jinja
    """
    text = inner.strip()
    if not text or text[0] in "-+" or text[-1] in "-+":
        return None  # ``{{- x -}}``: Jinja's whitespace control
    outside: list[str] = []
    depth, quote = 0, ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif depth and char in "'\"":
            quote = char
        elif char == "[":
            depth += 1
        elif char == "]" and depth:
            depth -= 1
        elif not depth:
            if char in _JINJA_ONLY:
                return None
            outside.append(char)
    if _KEYWORDS.intersection("".join(outside).split()):
        return None
    try:
        segments = parse_path(text)
    except PathError:
        return None
    return None if segments[0] in bound else segments


def scan(source: str, shorthands: Shorthands) -> Iterator[Piece]:
    """The pieces of ``source``: literal text, Jinja tags, and the shorthands that ``shorthands`` accepts."""
    position = 0
    text_start = 0
    length = len(source)
    bound = bound_names(source) if shorthands.fields and "{%" in source else frozenset({"loop"})
    while position < length:
        char = source[position]
        piece: Piece | None = None
        end = position
        if shorthands.jinja and char == "{" and _TAG_START.match(source, position):
            end = _tag_end(source, position)
            tag = source[position:end]
            path = (
                is_field_path(tag[2:-2], bound)
                if shorthands.fields and tag.startswith("{{") and tag.endswith("}}")
                else None
            )
            piece = Piece("field", tag, position, path) if path is not None else Piece("tag", tag, position)
        elif char == "$" and shorthands.variables:
            match = _VARIABLE.match(source, position)
            if match and match.group(1) in shorthands.variables:
                end = match.end()
                piece = Piece("variable", match.group(1), position)
        elif char == "{" and shorthands.placeholders is not None:
            match = _PARAM.match(source, position)
            if match:
                end = match.end()
                piece = Piece("param", match.group(1), position)
        if piece is None:
            position += 1
            continue
        if text_start < position:
            yield Piece("text", source[text_start:position], text_start)
        yield piece
        position = text_start = end
    if text_start < length:
        yield Piece("text", source[text_start:], text_start)


def _literal(text: str) -> str:
    """``text`` as a Jinja string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def translate(source: str, shorthands: Shorthands) -> str:
    """The Jinja source of ``source`` (for ``shorthands.jinja``; see :func:`translate_ast` otherwise)."""
    out: list[str] = []
    for piece in scan(source, shorthands):
        if piece.kind in ("text", "tag"):
            out.append(piece.text)
            continue
        if out and out[-1].endswith("{"):
            # A literal '{' right before a generated '{{' would make '{{{': print that brace instead.
            out[-1] = out[-1][:-1] + "{{ '{' }}"
        if piece.kind == "variable":
            out.append("{{ " + piece.text + " }}")
        elif piece.kind == "param":
            out.append(
                "{{ " + str(shorthands.placeholders) + " | path_param(" + _literal(piece.text) + ") }}"
            )
        else:
            out.append("{{ record | field(" + _literal(piece.text[2:-2].strip()) + ") }}")
    return "".join(out)


def translate_ast(source: str, shorthands: Shorthands) -> nodes.Template:
    """The Jinja syntax tree of ``source`` when only the shorthands are syntax (``shorthands.jinja`` false)."""
    children: list[nodes.Expr] = []
    line = 1
    for piece in scan(source, shorthands):
        node: nodes.Expr
        if piece.kind == "variable":
            node = nodes.Name(piece.text, "load")
        elif piece.kind == "param":
            mapping = nodes.Name(str(shorthands.placeholders), "load")
            node = nodes.Filter(mapping, "path_param", [nodes.Const(piece.text)], [], None, None)
        else:
            node = nodes.TemplateData(piece.text)
        node.set_lineno(line, override=True)
        children.append(node)
        line += piece.text.count("\n")
    output = nodes.Output(children, lineno=1)
    return nodes.Template([output], lineno=1)


def wrap_outputs(template: nodes.Template) -> nodes.Template:
    """``template`` with every printed value passed through ``as_text`` (how ``format_string`` prints)."""
    for output in template.find_all(nodes.Output):
        output.nodes = [
            child
            if isinstance(child, nodes.TemplateData)
            else nodes.Filter(child, "as_text", [], [], None, None, lineno=child.lineno)
            for child in output.nodes
        ]
    return template
