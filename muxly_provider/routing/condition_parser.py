"""Tokenizer and recursive-descent parser of Muxly's condition language.

Grammar (keywords are case-insensitive; ``AND`` binds tighter than ``OR``)::

    condition  := or_expr EOF | EOF
    or_expr    := and_expr ("OR" and_expr)*
    and_expr   := not_expr ("AND" not_expr)*
    not_expr   := "NOT" not_expr | primary
    primary    := "(" or_expr ")" | "EXISTS" path | "EXISTS" "(" path ")" | test
    test       := operand ( OP operand | ["NOT"] "CONTAINS" operand | "STARTS" "WITH" operand
                          | "ENDS" "WITH" operand | ["NOT"] "IN" "(" [literal ("," literal)*] ")" )
    operand    := path | literal
    literal    := 'string' | number | "true" | "false" | "null"
    OP         := "==" | "=" | "!=" | "<>" | ">" | ">=" | "<" | "<="

Every error is a :class:`~muxly_provider.exceptions.MuxlyConditionError` with the 0-based position of the
offending character or token. The parser is linear in the length of the text; nesting (parentheses and ``NOT``)
is limited to :data:`MAX_DEPTH` levels and the text to :data:`MAX_LENGTH` characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from muxly_provider.exceptions import MuxlyConditionError
from muxly_provider.routing.condition_ast import (
    KEYWORDS,
    And,
    Compare,
    CompareOp,
    Exists,
    In,
    Literal,
    Node,
    Not,
    Operand,
    Or,
    Path,
)
from muxly_provider.routing.paths import PathError, parse_path

MAX_DEPTH: Final = 100
"""The deepest nesting of parentheses and ``NOT`` accepted."""

MAX_LENGTH: Final = 100_000
"""The longest expression accepted, in characters."""

_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_OPERATORS: dict[str, CompareOp] = {
    "==": "==",
    "=": "==",
    "!=": "!=",
    "<>": "!=",
    ">": ">",
    ">=": ">=",
    "<": "<",
    "<=": "<=",
}
_OPERATOR_CHARS = frozenset("=!<>~&|^%*+/")
_HINTS = {"&&": " (use AND)", "||": " (use OR)", "!": " (use NOT or !=)", "===": " (use ==)"}


@dataclass(frozen=True, slots=True)
class Token:
    """A token: ``kind`` is STR, NUM, PATH, KW (value upper-cased), OP, LP, RP, COMMA or EOF."""

    kind: str
    value: Any
    pos: int
    text: str


def _fail(message: str, expression: str, position: int) -> MuxlyConditionError:
    return MuxlyConditionError(message, expression, position)


def _is_path_char(c: str) -> bool:
    return c.isalnum() or c in "_-$."


def _read_string(text: str, start: int) -> tuple[str, int]:
    chars: list[str] = []
    i = start + 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == "'":
            if i + 1 < n and text[i + 1] == "'":
                chars.append("'")
                i += 2
                continue
            return "".join(chars), i + 1
        if c == "\\" and i + 1 < n and text[i + 1] in "'\\":
            chars.append(text[i + 1])
            i += 2
            continue
        chars.append(c)
        i += 1
    raise _fail("unterminated string", text, start)


def _read_path(text: str, start: int) -> int:
    """The end of the path token starting at ``start`` (brackets may hold quoted keys)."""
    i = start
    n = len(text)
    while i < n:
        c = text[i]
        if c == "[":
            j = i + 1
            if j < n and text[j] == "'":
                try:
                    _, j = _read_string(text, j)
                except MuxlyConditionError as exc:
                    raise _fail("unterminated quoted key", text, j) from exc
            while j < n and text[j] != "]":
                j += 1
            if j >= n:
                raise _fail("missing ']' to close '['", text, i)
            i = j + 1
        elif _is_path_char(c):
            i += 1
        else:
            break
    return i


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``, ending with an EOF token.

    :raises MuxlyConditionError: on a character that starts no token, an unterminated string, a bad number
    """
    tokens: list[Token] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "'":
            value, end = _read_string(text, i)
            tokens.append(Token("STR", value, i, text[i:end]))
            i = end
        elif c == '"':
            raise _fail("strings are written in single quotes", text, i)
        elif c in "()," or c == "[":
            if c == "[":
                end = _read_path(text, i)
                tokens.append(_path_token(text, i, end))
                i = end
                continue
            tokens.append(Token({"(": "LP", ")": "RP", ",": "COMMA"}[c], c, i, c))
            i += 1
        elif ("0" <= c <= "9") or (
            c in "-." and i + 1 < n and ("0" <= text[i + 1] <= "9" or text[i + 1] == ".")
        ):
            match = _NUMBER.match(text, i)
            end = match.end() if match else i + 1
            if match is None or (end < n and (_is_path_char(text[end]) or text[end] in "'[")):
                raise _fail("invalid number", text, i)
            tokens.append(Token("NUM", _number(match.group(), text, i), i, match.group()))
            i = end
        elif c in _OPERATOR_CHARS:
            j = i
            while j < n and text[j] in _OPERATOR_CHARS:
                j += 1
            op = text[i:j]
            if op not in _OPERATORS:
                raise _fail(f"unknown operator {op!r}{_HINTS.get(op, '')}", text, i)
            tokens.append(Token("OP", _OPERATORS[op], i, op))
            i = j
        elif c.isalpha() or c in "_$":
            end = _read_path(text, i)
            word = text[i:end]
            if word.upper() in KEYWORDS:
                tokens.append(Token("KW", word.upper(), i, word))
            else:
                tokens.append(_path_token(text, i, end))
            i = end
        else:
            raise _fail(f"unexpected character {c!r}", text, i)
    tokens.append(Token("EOF", None, n, ""))
    return tokens


def _number(literal: str, text: str, pos: int) -> int | float:
    try:
        if any(c in literal for c in ".eE"):
            return float(literal)
        return int(literal)
    except ValueError as exc:  # more digits than int() converts
        raise _fail("number too long", text, pos) from exc


def _path_token(text: str, start: int, end: int) -> Token:
    word = text[start:end]
    try:
        segments = parse_path(word)
    except PathError as exc:
        raise _fail(exc.message, text, start + exc.position) from exc
    return Token("PATH", segments, start, word)


def _describe(token: Token) -> str:
    return "the end of the expression" if token.kind == "EOF" else repr(token.text)


class Parser:
    """A recursive-descent parser over the tokens of one expression.

    :param text: the expression
    """

    def __init__(self, text: str) -> None:
        if len(text) > MAX_LENGTH:
            raise _fail(f"expression longer than {MAX_LENGTH} characters", text, MAX_LENGTH)
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0
        self.depth = 0

    @property
    def token(self) -> Token:
        """The current token."""
        return self.tokens[self.index]

    def _next(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "EOF":
            self.index += 1
        return token

    def _is_kw(self, *words: str) -> bool:
        return self.token.kind == "KW" and self.token.value in words

    def _error(self, message: str, token: Token | None = None) -> MuxlyConditionError:
        return _fail(message, self.text, (token or self.token).pos)

    def parse(self) -> Node:
        """The tree of the whole expression (the caller handles the empty expression)."""
        node = self._or()
        token = self.token
        if token.kind == "RP":
            raise self._error("unexpected ')' without a matching '('")
        if token.kind != "EOF":
            raise self._error(f"expected AND, OR or the end of the expression, found {_describe(token)}")
        return node

    def _enter(self, token: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self._error(f"expression nested more than {MAX_DEPTH} levels deep", token)

    def _or(self) -> Node:
        operands = [self._and()]
        while self._is_kw("OR"):
            self._next()
            operands.append(self._and())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def _and(self) -> Node:
        operands = [self._not()]
        while self._is_kw("AND"):
            self._next()
            operands.append(self._not())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def _not(self) -> Node:
        if not self._is_kw("NOT"):
            return self._primary()
        token = self._next()
        self._enter(token)
        node = Not(self._not())
        self.depth -= 1
        return node

    def _primary(self) -> Node:
        token = self.token
        if token.kind == "LP":
            self._next()
            self._enter(token)
            node = self._or()
            if self.token.kind != "RP":
                if self.token.kind == "EOF":
                    raise self._error(f"missing ')' to close the '(' at position {token.pos}")
                raise self._error(f"expected ')' or AND/OR, found {_describe(self.token)}")
            self._next()
            self.depth -= 1
            return node
        if self._is_kw("EXISTS"):
            self._next()
            return Exists(self._exists_path(token))
        if token.kind == "EOF":
            raise self._error("expected a condition, found the end of the expression")
        return self._test()

    def _exists_path(self, exists: Token) -> Path:
        parenthesized = self.token.kind == "LP"
        if parenthesized:
            self._next()
        if self.token.kind != "PATH":
            raise self._error(f"expected a field path after EXISTS, found {_describe(self.token)}")
        path = Path(self._next().value)
        if parenthesized:
            if self.token.kind != "RP":
                raise self._error(f"expected ')' after the path, found {_describe(self.token)}")
            self._next()
        return path

    def _operand(self, after: str) -> Operand:
        token = self.token
        if token.kind == "PATH":
            self._next()
            return Path(token.value)
        if token.kind in ("STR", "NUM"):
            self._next()
            return Literal(token.value)
        if self._is_kw("TRUE", "FALSE", "NULL"):
            self._next()
            return Literal({"TRUE": True, "FALSE": False, "NULL": None}[token.value])
        what = "a field path or a value" if not after else "a value"
        prefix = f" after {after}" if after else ""
        raise self._error(f"expected {what}{prefix}, found {_describe(token)}")

    def _test(self) -> Node:
        left = self._operand("")
        token = self.token
        if token.kind == "OP":
            self._next()
            return Compare(token.value, left, self._operand(repr(token.text)))
        negated = False
        if self._is_kw("NOT"):
            self._next()
            negated = True
            if not self._is_kw("CONTAINS", "IN"):
                raise self._error(f"expected CONTAINS or IN after NOT, found {_describe(self.token)}")
        if self._is_kw("CONTAINS"):
            self._next()
            op: CompareOp = "NOT CONTAINS" if negated else "CONTAINS"
            return Compare(op, left, self._operand(op))
        if self._is_kw("IN"):
            self._next()
            return In(left, self._in_values(), negated)
        if self._is_kw("STARTS", "ENDS"):
            word = self._next().value
            if not self._is_kw("WITH"):
                raise self._error(f"expected WITH after {word}, found {_describe(self.token)}")
            self._next()
            op = "STARTS WITH" if word == "STARTS" else "ENDS WITH"
            return Compare(op, left, self._operand(op))
        if token.kind == "PATH" and "." not in token.text and "$" not in token.text:
            raise self._error(f"unknown operator {token.text!r}")
        raise self._error(
            f"expected an operator after {self.tokens[self.index - 1].text!r}, found {_describe(token)}"
        )

    def _in_values(self) -> tuple[Literal, ...]:
        if self.token.kind != "LP":
            raise self._error(f"expected '(' after IN, found {_describe(self.token)}")
        self._next()
        values: list[Literal] = []
        if self.token.kind == "RP":
            self._next()
            return ()
        while True:
            operand = self._operand("IN (")
            if isinstance(operand, Path):
                raise _fail(
                    "expected a value in the IN list, found a field path",
                    self.text,
                    self.tokens[self.index - 1].pos,
                )
            values.append(operand)
            if self.token.kind == "COMMA":
                self._next()
                continue
            if self.token.kind == "RP":
                self._next()
                return tuple(values)
            raise self._error(f"expected ',' or ')' in the IN list, found {_describe(self.token)}")


def parse(text: str) -> Node:
    """The tree of a non-empty expression.

    :param text: the expression
    :raises MuxlyConditionError: when it is not a valid condition
    """
    return Parser(text).parse()
