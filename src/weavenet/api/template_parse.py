"""Lexer and parser for the Go text/template subset (see :mod:`weavenet.api.template`)."""

from __future__ import annotations

import ast
import re
from typing import Any

import msgspec

FUNCS = frozenset(
    {"and", "or", "not", "len", "index", "json", "printf", "print", "println"}
    | {"eq", "ne", "lt", "le", "gt", "ge", "slice"}
)
KEYWORDS = frozenset(
    {"if", "else", "end", "range", "with", "break", "continue", "define", "template", "block"}
)

_TOKEN_RE = re.compile(
    r"""
     (?P<str>"(?:[^"\\\n]|\\.)*")
    |(?P<raw>`[^`]*`)
    |(?P<decl>:=)
    |(?P<assign>=)
    |(?P<pipe>\|)
    |(?P<lparen>\()
    |(?P<rparen>\))
    |(?P<comma>,)
    |(?P<num>[+-]?(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?))
    |(?P<var>\$[A-Za-z_0-9]*)
    |(?P<field>(?:\.[A-Za-z_][A-Za-z_0-9]*)+)
    |(?P<dot>\.)
    |(?P<ident>[A-Za-z_][A-Za-z_0-9]*)
    """,
    re.VERBOSE,
)
_SPACE = " \t\r\n"


class TemplateError(ValueError):
    """A template failed to parse or to execute; the message says where and why."""


class Tok(msgspec.Struct):
    kind: str
    text: str
    pos: int
    space_before: bool


# --- AST -------------------------------------------------------------------


class Operand(msgspec.Struct):
    """kind: field | var | dot | lit | func | pipe; ``fields`` is a trailing .A.B chain."""

    kind: str
    pos: int
    value: Any = None
    fields: tuple[str, ...] = ()


class Command(msgspec.Struct):
    args: list[Operand]
    pos: int


class Pipe(msgspec.Struct):
    pos: int
    decl: list[str] = msgspec.field(default_factory=list)
    is_assign: bool = False
    cmds: list[Command] = msgspec.field(default_factory=list)


class Node(msgspec.Struct):
    """kind: text | action | if | range | with | break | continue."""

    kind: str
    pos: int
    text: str = ""
    pipe: Pipe | None = None
    body: list[Node] = msgspec.field(default_factory=list)
    else_body: list[Node] = msgspec.field(default_factory=list)


def position(src: str, name: str, pos: int) -> str:
    line = src.count("\n", 0, pos) + 1
    col = pos - (src.rfind("\n", 0, pos) + 1) + 1
    return f"template: {name}:{line}:{col}"


# --- lexer -----------------------------------------------------------------


class Item(msgspec.Struct):
    """A text run or an action's tokens."""

    kind: str  # text | action
    pos: int
    text: str = ""
    toks: list[Tok] = msgspec.field(default_factory=list)


class _Lexer:
    def __init__(self, src: str, name: str) -> None:
        self.src = src
        self.name = name

    def error(self, pos: int, msg: str) -> TemplateError:
        return TemplateError(f"{position(self.src, self.name, pos)}: {msg}")

    def items(self) -> list[Item]:
        src, out, i, trim_next = self.src, [], 0, False
        while i <= len(src):
            start = src.find("{{", i)
            text = src[i:] if start < 0 else src[i:start]
            if trim_next:
                text = text.lstrip(_SPACE)
            j = start + 2
            if start >= 0 and src.startswith("-", j) and src[j + 1 : j + 2] in tuple(_SPACE):
                text, j = text.rstrip(_SPACE), j + 1
            if text:
                out.append(Item("text", i, text=text))
            if start < 0:
                break
            toks, i, trim_next = self._action(start, j)
            if toks is not None:
                out.append(Item("action", start, toks=toks))
        return out

    def _action(self, start: int, i: int) -> tuple[list[Tok] | None, int, bool]:
        src = self.src
        k = i
        while k < len(src) and src[k] in _SPACE:
            k += 1
        if src.startswith("/*", k):
            end = src.find("*/", k + 2)
            if end < 0:
                raise self.error(start, "unclosed comment")
            return None, *self._close(start, end + 2, comment=True)
        toks: list[Tok] = []
        space = True
        while True:
            if i >= len(src):
                raise self.error(start, "unclosed action")
            if src.startswith("}}", i) or (space and src.startswith("-}}", i)):
                return toks, *self._close(start, i)
            if src[i] in _SPACE:
                i, space = i + 1, True
                continue
            m = _TOKEN_RE.match(src, i)
            if m is None or m.lastgroup is None:
                raise self.error(i, f"unexpected {src[i]!r} in command")
            toks.append(Tok(m.lastgroup, m.group(), i, space))
            i, space = m.end(), False

    def _close(self, start: int, i: int, comment: bool = False) -> tuple[int, bool]:
        src = self.src
        j = i
        while j < len(src) and src[j] in _SPACE:
            j += 1
        if src.startswith("-}}", j) and (j > i or not comment):
            return j + 3, True
        if src.startswith("}}", j) and (j == i or not comment):
            return j + 2, False
        raise self.error(
            start, "unclosed action" if not comment else "comment ends before closing delimiter"
        )


# --- parser ----------------------------------------------------------------


class Parser:
    def __init__(self, src: str, name: str) -> None:
        self.src = src
        self.name = name
        self.items = _Lexer(src, name).items()
        self.idx = 0
        self.toks: list[Tok] = []
        self.tpos = 0

    def error(self, pos: int, msg: str) -> TemplateError:
        return TemplateError(f"{position(self.src, self.name, pos)}: {msg}")

    def parse(self) -> list[Node]:
        nodes, end = self._list()
        if end is not None:
            raise self.error(end.pos, f"unexpected {{{{{end.text}}}}}")
        return nodes

    def _list(self) -> tuple[list[Node], Tok | None]:
        """Parse nodes until {{end}}/{{else}} (returned) or end of input (None)."""
        nodes: list[Node] = []
        while self.idx < len(self.items):
            item = self.items[self.idx]
            self.idx += 1
            if item.kind == "text":
                nodes.append(Node("text", item.pos, text=item.text))
                continue
            self.toks, self.tpos = item.toks, 0
            if not self.toks:
                raise self.error(item.pos, "missing value for command")
            first = self.toks[0]
            if first.kind == "ident" and first.text in ("end", "else"):
                return nodes, first
            nodes.append(self._action(first))
        return nodes, None

    def _action(self, first: Tok) -> Node:
        if first.kind == "ident" and first.text in ("if", "range", "with"):
            self.tpos = 1
            return self._control(first.text, first.pos)
        if first.kind == "ident" and first.text in ("break", "continue"):
            self._expect_end(1)
            return Node(first.text, first.pos)
        if first.kind == "ident" and first.text in KEYWORDS:
            raise self.error(first.pos, f"{{{{{first.text}}}}} is not supported here")
        return Node("action", first.pos, pipe=self._pipe_all())

    def _control(self, kind: str, pos: int) -> Node:
        node = Node(kind, pos, pipe=self._pipe_all())
        if node.pipe is not None and not node.pipe.cmds:
            raise self.error(pos, f"missing value for {kind}")
        node.body, end = self._list()
        if end is None:
            raise self.error(pos, f"unexpected EOF: {{{{{kind}}}}} has no {{{{end}}}}")
        if end.text == "end":
            self._expect_end(1)
            return node
        if len(self.toks) > 1 and self.toks[1].text in ("if", "with") and kind != "range":
            self.tpos = 2
            node.else_body = [self._control(self.toks[1].text, self.toks[1].pos)]
            return node
        self._expect_end(1)
        node.else_body, end = self._list()
        if end is None or end.text != "end":
            raise self.error(pos, f"expected {{{{end}}}} to close {{{{{kind}}}}}")
        self._expect_end(1)
        return node

    def _expect_end(self, n: int) -> None:
        if len(self.toks) > n:
            tok = self.toks[n]
            raise self.error(tok.pos, f"unexpected {tok.text!r} in {self.toks[0].text}")

    def _peek(self) -> Tok | None:
        return self.toks[self.tpos] if self.tpos < len(self.toks) else None

    def _pipe_all(self) -> Pipe:
        pipe = self._pipe(nested=False)
        tok = self._peek()
        if tok is not None:
            raise self.error(tok.pos, f"unexpected {tok.text!r} in operand")
        return pipe

    def _declaration(self, pipe: Pipe) -> None:
        kinds = [t.kind for t in self.toks[self.tpos : self.tpos + 4]]
        if kinds[:2] in (["var", "decl"], ["var", "assign"]):
            pipe.decl = [self.toks[self.tpos].text]
            pipe.is_assign = kinds[1] == "assign"
            self.tpos += 2
        elif kinds[:4] == ["var", "comma", "var", "decl"]:
            pipe.decl = [self.toks[self.tpos].text, self.toks[self.tpos + 2].text]
            self.tpos += 4

    def _pipe(self, nested: bool) -> Pipe:
        tok = self._peek()
        pipe = Pipe(tok.pos if tok else 0)
        self._declaration(pipe)
        while True:
            cmd = self._command()
            if cmd.args:
                pipe.cmds.append(cmd)
            tok = self._peek()
            if tok is None or (nested and tok.kind == "rparen"):
                break
            if tok.kind != "pipe" or not cmd.args:
                raise self.error(tok.pos, f"unexpected {tok.text!r} in command")
            self.tpos += 1
        if pipe.decl and not pipe.cmds:
            raise self.error(pipe.pos, "missing value for command")
        return pipe

    def _command(self) -> Command:
        tok = self._peek()
        cmd = Command([], tok.pos if tok else 0)
        while (tok := self._peek()) is not None and tok.kind not in ("pipe", "rparen"):
            if tok.kind in ("comma", "decl", "assign"):
                raise self.error(tok.pos, f"unexpected {tok.text!r} in operand")
            cmd.args.append(self._operand())
        return cmd

    def _operand(self) -> Operand:
        tok = self.toks[self.tpos]
        self.tpos += 1
        op = self._term(tok)
        nxt = self._peek()
        if nxt is not None and nxt.kind == "field" and not nxt.space_before:
            if op.kind in ("lit", "func"):
                raise self.error(nxt.pos, f"unexpected {nxt.text!r} in operand")
            op.fields = op.fields + tuple(nxt.text[1:].split("."))
            self.tpos += 1
        return op

    def _term(self, tok: Tok) -> Operand:
        kind, text, pos = tok.kind, tok.text, tok.pos
        if kind == "field":
            return Operand("field", pos, fields=tuple(text[1:].split(".")))
        if kind == "dot":
            return Operand("dot", pos)
        if kind == "var":
            return Operand("var", pos, value=text)
        if kind == "str":
            return Operand("lit", pos, value=ast.literal_eval(text))
        if kind == "raw":
            return Operand("lit", pos, value=text[1:-1])
        if kind == "num":
            return Operand("lit", pos, value=_number(text))
        if kind == "lparen":
            pipe = self._pipe(nested=True)
            close = self._peek()
            if close is None or close.kind != "rparen":
                raise self.error(pos, "unclosed left paren")
            self.tpos += 1
            return Operand("pipe", pos, value=pipe)
        if kind == "ident":
            return self._ident(tok)
        raise self.error(pos, f"unexpected {text!r} in operand")

    def _ident(self, tok: Tok) -> Operand:
        consts = {"true": True, "false": False, "nil": None}
        if tok.text in consts:
            return Operand("lit", tok.pos, value=consts[tok.text])
        if tok.text in FUNCS:
            return Operand("func", tok.pos, value=tok.text)
        if tok.text in KEYWORDS:
            raise self.error(tok.pos, f"unexpected <{tok.text}> in command")
        raise self.error(tok.pos, f'function "{tok.text}" not defined')


def _number(text: str) -> int | float:
    if text.lstrip("+-").lower().startswith("0x"):
        return int(text, 16)
    if any(c in text for c in ".eE"):
        return float(text)
    return int(text)
