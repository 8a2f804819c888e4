"""The run filter language: parsed here into a small tree, compiled to SQL in `_query`.

```
filter     := or
or         := and ("or" and)*
and        := unary ("and" unary)*
unary      := "not" unary | "(" or ")" | comparison
comparison := field op literal
            | field ["not"] "in" "(" literal ("," literal)* ")"
            | field "is" ["not"] "null"
field      := ("metrics" | "params" | "tags") "." name  |  ["run" "."] attribute
name       := identifier | `back-quoted` | "double-quoted"
op         := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">=" | "like" | "not like"
literal    := number | 'string' | "string" | true | false
order_by   := field ["asc" | "desc"] ("," field ["asc" | "desc"])*
```

Keywords are case-insensitive. Parentheses and `not` nest at most `MAX_DEPTH` (16) levels
deep; a longer expression is refused with a FilterSyntaxError at the level that goes over.
Any number of terms may be joined with `and`/`or` (for a long list of values of one field,
`field in (...)` is shorter). `metrics.x` is the value at the highest step. Params are
compared as numbers when the literal is a number and the param parses as one, else as
text. A comparison on a metric, param or tag that a run does not have is false (only
`is null` matches it). Dates compare with ISO strings: `start_time > '2026-11-01'`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Literal as TypingLiteral

from kiln._exceptions import FilterSyntaxError, did_you_mean

__all__ = [
    "ATTRIBUTES",
    "MAX_DEPTH",
    "And",
    "Compare",
    "Field",
    "Node",
    "Not",
    "Or",
    "OrderKey",
    "parse_filter",
    "parse_order_by",
]

#: Run attributes a filter can name, with their kind.
ATTRIBUTES: dict[str, str] = {
    "id": "text",
    "name": "text",
    "status": "text",
    "experiment": "text",
    "user": "text",
    "host": "text",
    "git_commit": "text",
    "git_branch": "text",
    "git_dirty": "bool",
    "parent_id": "text",
    "start_time": "time",
    "end_time": "time",
    "duration": "number",
}
#: How deep parentheses and `not` may nest. Parsing and compiling recurse once per level,
#: and SQLite's parser has a fixed stack of 100 entries: `(a and (b or (c and ...)))` with
#: its subqueries overflows it ("parser stack overflow") at about 20 levels.
MAX_DEPTH = 16
_NAMESPACES = ("metrics", "params", "tags")
_OPS = {"=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}

Value = float | str | bool


@dataclass(frozen=True)
class Field:
    """A field: `kind` is metrics, params, tags or attribute; `name` its key."""

    kind: str
    name: str


@dataclass(frozen=True)
class Compare:
    """`field op value`; `op` is one of = != < <= > >= like notlike in notin isnull notnull."""

    field: Field
    op: str
    value: Value | tuple[Value, ...] | None
    pos: int = dc_field(default=0, compare=False)


@dataclass(frozen=True)
class And:
    """Both sides hold."""

    left: Node
    right: Node


@dataclass(frozen=True)
class Or:
    """Either side holds."""

    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    """The inner condition does not hold."""

    inner: Node


Node = Compare | And | Or | Not


@dataclass(frozen=True)
class OrderKey:
    """One order-by key."""

    field: Field
    descending: bool


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
  | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
  | (?P<backq>`[^`]*`)
  | (?P<op><=|>=|==|!=|<>|=|<|>)
  | (?P<punct>[(),.])
  | (?P<word>[A-Za-z_][A-Za-z0-9_\-]*)
    """,
    re.VERBOSE,
)


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int

    @property
    def low(self) -> str:
        return self.text.lower()


def _tokenize(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            ch = text[pos]
            if ch in "'\"`":
                raise FilterSyntaxError("Unterminated quoted string", text, pos)
            raise FilterSyntaxError(f"Unexpected character {ch!r}", text, pos)
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    out.append(_Tok("end", "", len(text)))
    return out


def _unquote(tok: _Tok) -> str:
    body = tok.text[1:-1]
    if tok.text[0] == "'":
        body = body.replace("''", "'")
    return re.sub(r"\\(.)", r"\1", body) if tok.kind == "string" else body


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def fail(self, message: str, tok: _Tok | None = None) -> FilterSyntaxError:
        tok = tok or self.tok
        return FilterSyntaxError(message, self.text, tok.pos)

    def expect_end(self) -> None:
        if self.tok.kind != "end":
            if self.tok.text == ")":
                raise self.fail("Unbalanced ')': no '(' opens it")
            raise self.fail(f"Expected 'and', 'or' or the end, found {self.tok.text!r}")

    def is_word(self, *words: str) -> bool:
        return self.tok.kind == "word" and self.tok.low in words

    # filter := or
    def parse_or(self) -> Node:
        node = self.parse_and()
        while self.is_word("or"):
            self.take()
            node = Or(node, self.parse_and())
        return node

    def parse_and(self) -> Node:
        node = self.parse_unary()
        while self.is_word("and"):
            self.take()
            node = And(node, self.parse_unary())
        return node

    def parse_unary(self) -> Node:
        if self.is_word("not") or (self.tok.text == "(" and self.tok.kind == "punct"):
            if self.depth >= MAX_DEPTH:
                raise self.fail(
                    f"The filter nests parentheses and 'not' more than {MAX_DEPTH} levels deep "
                    "here; flatten it (a or b or c needs no parentheses; not not x is x)"
                )
            self.depth += 1
            try:
                return self._nested()
            finally:
                self.depth -= 1
        return self.parse_compare()

    def _nested(self) -> Node:
        if self.is_word("not"):
            self.take()
            return Not(self.parse_unary())
        opening = self.take()
        node = self.parse_or()
        if self.tok.text != ")":
            if self.tok.kind == "end":
                raise self.fail("Missing ')' to close the '(' here", opening)
            raise self.fail(f"Expected ')', found {self.tok.text!r}")
        self.take()
        return node

    def parse_field(self) -> Field:
        tok = self.take()
        if tok.kind == "end":
            raise self.fail("Expected a field such as metrics.acc, params.model or status", tok)
        if tok.kind != "word":
            raise self.fail(
                f"Expected a field such as metrics.acc, params.model or status, found {tok.text!r}",
                tok,
            )
        head = tok.low
        if self.tok.text == "." and self.tok.kind == "punct":
            self.take()
            if head == "run" or head == "attributes":
                return self._attribute(self.take())
            if head not in _NAMESPACES:
                hint = did_you_mean(head, _NAMESPACES)
                raise self.fail(
                    f"Unknown namespace {tok.text!r}: expected metrics, params, tags or run.{hint}",
                    tok,
                )
            return Field(head, self._name())
        return self._attribute(tok)

    def _name(self) -> str:
        tok = self.take()
        if tok.kind == "word":
            # Keys may contain dots (metrics.val.loss): take word(.word)* greedily.
            parts = [tok.text]
            while True:
                if self.tok.text == "." and self.toks[self.i + 1].kind in ("word", "number"):
                    self.take()
                    parts.append(self.take().text.lstrip("."))
                elif (
                    self.tok.kind == "number"
                    and self.tok.text.startswith(".")
                    and self.tok.pos == self.toks[self.i - 1].pos + len(self.toks[self.i - 1].text)
                ):
                    # `layer.0` lexes as word `layer` and number `.0`.
                    parts.append(self.take().text.lstrip("."))
                else:
                    break
            return ".".join(parts)
        if tok.kind == "backq" or (tok.kind == "string" and tok.text[0] == '"'):
            return _unquote(tok)
        raise self.fail("Expected a key after the '.' (quote it with `...` if it has spaces)", tok)

    def _attribute(self, tok: _Tok) -> Field:
        name = tok.low
        if tok.kind != "word" or name not in ATTRIBUTES:
            hint = did_you_mean(name, ATTRIBUTES)
            raise self.fail(
                f"Unknown run attribute {tok.text!r}. Attributes are "
                f"{', '.join(ATTRIBUTES)}; for a metric, param or tag write metrics.{tok.text}, "
                f"params.{tok.text} or tags.{tok.text}.{hint}",
                tok,
            )
        return Field("attribute", name)

    def parse_literal(self) -> Value:
        tok = self.take()
        if tok.kind == "number":
            return float(tok.text)
        if tok.kind == "string":
            return _unquote(tok)
        if tok.kind == "word" and tok.low in ("true", "false"):
            return tok.low == "true"
        if tok.kind == "end":
            raise self.fail("Expected a value (a number or a 'quoted string')", tok)
        hint = " Quote strings: 'rf'." if tok.kind == "word" else ""
        raise self.fail(
            f"Expected a value (a number or a 'quoted string'), found {tok.text!r}.{hint}", tok
        )

    def parse_compare(self) -> Compare:
        start = self.tok.pos
        node = self._compare()
        return Compare(node.field, node.op, node.value, start)

    def _compare(self) -> Compare:
        field = self.parse_field()
        tok = self.tok
        if tok.kind == "op":
            self.take()
            return Compare(field, _OPS[tok.text], self.parse_literal())
        if self.is_word("like", "ilike"):
            self.take()
            return Compare(field, "like", self._string_literal())
        if self.is_word("is"):
            self.take()
            negate = False
            if self.is_word("not"):
                self.take()
                negate = True
            if not self.is_word("null"):
                raise self.fail("Expected 'null' after 'is'")
            self.take()
            return Compare(field, "notnull" if negate else "isnull", None)
        if self.is_word("not"):
            self.take()
            if self.is_word("like", "ilike"):
                self.take()
                return Compare(field, "notlike", self._string_literal())
            if self.is_word("in"):
                self.take()
                return Compare(field, "notin", self._list())
            raise self.fail("Expected 'like' or 'in' after 'not'")
        if self.is_word("in"):
            self.take()
            return Compare(field, "in", self._list())
        if tok.kind == "end":
            raise self.fail("Expected an operator (=, !=, <, <=, >, >=, like, in, is null)")
        raise self.fail(
            f"Expected an operator (=, !=, <, <=, >, >=, like, in, is null), found {tok.text!r}"
        )

    def _string_literal(self) -> str:
        tok = self.tok
        value = self.parse_literal()
        if not isinstance(value, str):
            raise self.fail("'like' needs a quoted pattern such as 'rf%'", tok)
        return value

    def _list(self) -> tuple[Value, ...]:
        if self.tok.text != "(":
            raise self.fail("Expected '(' to start the list after 'in'")
        self.take()
        values = [self.parse_literal()]
        while self.tok.text == ",":
            self.take()
            values.append(self.parse_literal())
        if self.tok.text != ")":
            raise self.fail("Expected ',' or ')' in the list")
        self.take()
        return tuple(values)


def parse_filter(text: str) -> Node | None:
    """Parse a filter expression; None for an empty one.

    Raises:
        FilterSyntaxError: With the position of the first error.
    """
    if not text or not text.strip():
        return None
    parser = _Parser(text)
    node = parser.parse_or()
    parser.expect_end()
    return node


def parse_order_by(text: str | list[str] | None) -> list[OrderKey]:
    """Parse `"metrics.acc desc, start_time"` (or a list of such items) into order keys."""
    if not text:
        return []
    items = [text] if isinstance(text, str) else list(text)
    keys: list[OrderKey] = []
    for item in items:
        parser = _Parser(item)
        while True:
            field = parser.parse_field()
            direction: TypingLiteral["asc", "desc"] = "asc"
            if parser.is_word("asc", "desc"):
                direction = "desc" if parser.take().low == "desc" else "asc"
            keys.append(OrderKey(field, direction == "desc"))
            if parser.tok.text == ",":
                parser.take()
                continue
            if parser.tok.kind != "end":
                raise parser.fail(
                    f"Expected ',', 'asc', 'desc' or the end, found {parser.tok.text!r}"
                )
            break
    return keys
