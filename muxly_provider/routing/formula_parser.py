"""Tokenizer, syntax tree and precedence-climbing parser of ``formula`` transformations.

Grammar (function names are case-insensitive; ``**`` binds tighter than unary minus, as in Python)::

    formula := sum EOF
    sum     := product (("+" | "-") product)*
    product := unary (("*" | "/" | "%") unary)*
    unary   := ("-" | "+") unary | power
    power   := primary ["**" unary]
    primary := number | field | name "(" [sum ("," sum)*] ")" | "(" sum ")"

* numbers: ``42``, ``1.5``, ``.5``, ``1e3``;
* fields: dotted paths or JSONPath (``price``, ``order.total``, ``$.items[0].price``, ``$['unit price']``);
  a ``-`` is always a minus here, so a key holding one is written ``$['user-count']``;
* functions: see :data:`FUNCTIONS`; a name followed by ``(`` is a function, anything else a field, so a field
  may be named ``round``.

Every error is a :class:`FormulaSyntaxError` with the 0-based position of the offending character; nesting is
limited to :data:`MAX_DEPTH` levels and the text to :data:`MAX_LENGTH` characters. User text is only ever
parsed, never evaluated.

A run of operators of one precedence level (``a + b - c + ...``, ``a * b / c ...``) is read in a loop into one
flat :class:`Chain` node, so a formula of 10,000 terms parses, compiles and evaluates without recursion; only
nesting (parentheses, signs, powers, calls) recurses, and that is bounded by :data:`MAX_DEPTH`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from muxly_provider.routing.paths import PathError, Segment, format_path, parse_path

MAX_DEPTH: Final = 100
"""The deepest nesting of parentheses, unary signs and powers accepted."""

MAX_LENGTH: Final = 100_000
"""The longest formula accepted, in characters (a chain of 10,000 terms fits)."""

FUNCTIONS: Final[dict[str, tuple[int, int | None]]] = {
    "abs": (1, 1),
    "round": (1, 2),
    "floor": (1, 1),
    "ceil": (1, 1),
    "min": (1, None),
    "max": (1, None),
    "coalesce": (1, None),
}
"""The functions of the formula language with their (minimum, maximum) number of arguments."""

_NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class FormulaSyntaxError(ValueError):
    """A formula cannot be parsed.

    :param message: what is wrong
    :param formula: the whole formula
    :param position: the 0-based character offset of the error
    """

    def __init__(self, message: str, formula: str, position: int) -> None:
        self.message = message
        self.formula = formula
        self.position = position
        super().__init__(f"{message} at position {position}")

    def caret(self) -> str:
        """The formula with a caret under the position of the error."""
        return f"{self.formula}\n{' ' * self.position}^"


@dataclass(frozen=True, slots=True)
class Num:
    """A number literal."""

    value: int | float


@dataclass(frozen=True, slots=True)
class Field:
    """A field of the record; ``text`` is its canonical path (used in error messages)."""

    segments: tuple[Segment, ...]
    text: str


@dataclass(frozen=True, slots=True)
class Neg:
    """``-operand``."""

    operand: Expr


@dataclass(frozen=True, slots=True)
class BinOp:
    """``left op right`` with ``op`` one of ``+ - * / % **`` (the parser makes it only for ``**``)."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Chain:
    """``first op1 operand1 op2 operand2 ...`` computed left to right.

    The operators are all of one precedence level: ``+``/``-`` or ``*``/``/``/``%``.
    """

    first: Expr
    rest: tuple[tuple[str, Expr], ...]


@dataclass(frozen=True, slots=True)
class Call:
    """``name(args...)``; ``name`` is lower-case and one of :data:`FUNCTIONS`."""

    name: str
    args: tuple[Expr, ...]


Expr = Num | Field | Neg | BinOp | Chain | Call
"""Any node of a formula."""


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # NUM, FIELD, FUNC, OP, LP, RP, COMMA, EOF
    value: object
    pos: int
    text: str


def _read_path_end(text: str, start: int) -> int:
    i, n = start, len(text)
    while i < n:
        c = text[i]
        if c.isalnum() or c in "_$.":
            i += 1
        elif c == "[":
            j = i + 1
            quote = text[j] if j < n and text[j] in "'\"" else None
            if quote:
                j += 1
                while j < n and text[j] != quote:
                    j += 2 if text[j] == "\\" else 1
                j += 1
            while j < n and text[j] != "]":
                j += 1
            if j >= n:
                raise FormulaSyntaxError("missing ']' to close '['", text, i)
            i = j + 1
        else:
            break
    return i


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "(),":
            tokens.append(_Token({"(": "LP", ")": "RP", ",": "COMMA"}[c], c, i, c))
            i += 1
        elif "0" <= c <= "9" or (c == "." and i + 1 < n and "0" <= text[i + 1] <= "9"):
            match = _NUMBER.match(text, i)
            assert match is not None
            end = match.end()
            if end < n and (text[end].isalnum() or text[end] in "_.$["):
                raise FormulaSyntaxError("invalid number", text, i)
            literal = match.group()
            try:
                value: int | float = float(literal) if any(ch in literal for ch in ".eE") else int(literal)
            except ValueError as exc:
                raise FormulaSyntaxError("number too long", text, i) from exc
            tokens.append(_Token("NUM", value, i, literal))
            i = end
        elif c == "*" and text.startswith("**", i):
            tokens.append(_Token("OP", "**", i, "**"))
            i += 2
        elif c in "+-*/%":
            if text.startswith("//", i):
                raise FormulaSyntaxError("unknown operator '//' (use floor(a / b))", text, i)
            tokens.append(_Token("OP", c, i, c))
            i += 1
        elif c.isalpha() or c in "_$[":
            i = _field_or_function(text, i, tokens)
        elif c in "^":
            raise FormulaSyntaxError("unknown operator '^' (use ** for powers)", text, i)
        else:
            raise FormulaSyntaxError(f"unexpected character {c!r}", text, i)
    tokens.append(_Token("EOF", None, n, ""))
    return tokens


def _field_or_function(text: str, start: int, tokens: list[_Token]) -> int:
    end = _read_path_end(text, start)
    word = text[start:end]
    after = end
    while after < len(text) and text[after].isspace():
        after += 1
    if after < len(text) and text[after] == "(" and _IDENTIFIER.fullmatch(word):
        name = word.lower()
        if name not in FUNCTIONS:
            raise FormulaSyntaxError(
                f"unknown function {word!r} (known: {', '.join(sorted(FUNCTIONS))})", text, start
            )
        tokens.append(_Token("FUNC", name, start, word))
        return end
    try:
        segments = parse_path(word)
    except PathError as exc:
        raise FormulaSyntaxError(exc.message, text, start + exc.position) from exc
    tokens.append(_Token("FIELD", Field(segments, format_path(segments)), start, word))
    return end


def _describe(token: _Token) -> str:
    return "the end of the formula" if token.kind == "EOF" else repr(token.text)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def _next(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind != "EOF":
            self.index += 1
        return token

    def _error(self, message: str, token: _Token | None = None) -> FormulaSyntaxError:
        return FormulaSyntaxError(message, self.text, (token or self.token).pos)

    def _op(self, *ops: str) -> bool:
        return self.token.kind == "OP" and self.token.value in ops

    def _enter(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self._error(f"formula nested more than {MAX_DEPTH} levels deep", token)

    def parse(self) -> Expr:
        node = self._sum()
        if self.token.kind == "RP":
            raise self._error("unexpected ')' without a matching '('")
        if self.token.kind != "EOF":
            raise self._error(
                f"expected an operator or the end of the formula, found {_describe(self.token)}"
            )
        return node

    def _sum(self) -> Expr:
        first = self._product()
        rest: list[tuple[str, Expr]] = []
        while self._op("+", "-"):
            op = str(self._next().value)
            rest.append((op, self._product()))
        return Chain(first, tuple(rest)) if rest else first

    def _product(self) -> Expr:
        first = self._unary()
        rest: list[tuple[str, Expr]] = []
        while self._op("*", "/", "%"):
            op = str(self._next().value)
            rest.append((op, self._unary()))
        return Chain(first, tuple(rest)) if rest else first

    def _unary(self) -> Expr:
        if not self._op("+", "-"):
            return self._power()
        token = self._next()
        self._enter(token)
        operand = self._unary()
        self.depth -= 1
        if token.value == "+":
            return operand
        if isinstance(operand, Num):
            return Num(-operand.value)
        return Neg(operand)

    def _power(self) -> Expr:
        base = self._primary()
        if not self._op("**"):
            return base
        token = self._next()
        self._enter(token)
        exponent = self._unary()
        self.depth -= 1
        return BinOp("**", base, exponent)

    def _primary(self) -> Expr:
        token = self.token
        if token.kind == "NUM":
            self._next()
            assert isinstance(token.value, int | float)
            return Num(token.value)
        if token.kind == "FIELD":
            self._next()
            assert isinstance(token.value, Field)
            return token.value
        if token.kind == "LP":
            self._next()
            self._enter(token)
            node = self._sum()
            if self.token.kind != "RP":
                if self.token.kind == "EOF":
                    raise self._error(f"missing ')' to close the '(' at position {token.pos}")
                raise self._error(f"expected ')' or an operator, found {_describe(self.token)}")
            self._next()
            self.depth -= 1
            return node
        if token.kind == "FUNC":
            return self._call()
        if token.kind == "EOF":
            raise self._error("expected a number, a field or '(', found the end of the formula")
        raise self._error(f"expected a number, a field or '(', found {_describe(token)}")

    def _call(self) -> Expr:
        token = self._next()
        name = str(token.value)
        self._next()  # "("
        self._enter(token)
        args: list[Expr] = []
        if self.token.kind != "RP":
            while True:
                args.append(self._sum())
                if self.token.kind == "COMMA":
                    self._next()
                    continue
                if self.token.kind == "RP":
                    break
                raise self._error(
                    f"expected ',' or ')' in the call of {name}(), found {_describe(self.token)}"
                )
        self._next()
        self.depth -= 1
        low, high = FUNCTIONS[name]
        if len(args) < low or (high is not None and len(args) > high):
            wanted = str(low) if low == high else f"{low} to {high}" if high else f"at least {low}"
            raise self._error(f"{name}() takes {wanted} argument(s), got {len(args)}", token)
        return Call(name, tuple(args))


def parse_formula(text: str) -> Expr:
    """The syntax tree of a formula.

    :param text: the formula, e.g. ``round(price * (1 - discount_rate), 2)``
    :raises FormulaSyntaxError: when it is not a valid formula (with the position of the error)
    """
    if len(text) > MAX_LENGTH:
        raise FormulaSyntaxError(f"formula longer than {MAX_LENGTH} characters", text, MAX_LENGTH)
    if not text.strip():
        raise FormulaSyntaxError("empty formula", text, 0)
    parser = _Parser(text)
    try:
        return parser.parse()
    except RecursionError:  # only when called with little stack left: MAX_DEPTH keeps the parser shallow
        raise FormulaSyntaxError("formula nested too deeply", text, parser.token.pos) from None


def unparse_formula(node: Expr) -> str:
    """The canonical text of ``node`` (fully parenthesized where precedence needs it)."""
    if isinstance(node, Num):
        return repr(node.value)
    if isinstance(node, Field):
        return node.text
    if isinstance(node, Neg):
        return f"-({unparse_formula(node.operand)})"
    if isinstance(node, Call):
        return f"{node.name}({', '.join(unparse_formula(a) for a in node.args)})"
    if isinstance(node, Chain):
        parts = [unparse_formula(node.first)]
        for op, operand in node.rest:
            parts.append(f"{op} {unparse_formula(operand)}")
        return f"({' '.join(parts)})"
    return f"({unparse_formula(node.left)} {node.op} {unparse_formula(node.right)})"
