"""A Go text/template subset, for ``weave report -f`` and ``GET /report?format=``.

Supported: literal text; ``{{.A.B}}``, ``{{.}}``, ``{{$}}``, ``{{$x.A}}``; pipelines
``a | b``; parenthesised sub-pipelines; ``{{$x := ...}}`` / ``{{$x = ...}}``;
``if``/``else if``/``else``, ``range`` (with ``$i, $v :=`` and ``else``, ``break``,
``continue``), ``with``; comments ``{{/* */}}``; trim markers ``{{-`` and ``-}}``;
functions and, or, not, len, index, slice, json, printf, print, println, eq, ne,
lt, le, gt, ge. Values print like Go (``<no value>`` for a missing key, ``[a b]``,
``map[k:v]``). Data is plain JSON-like Python data. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from weavenet.api.gofmt import go_json, go_sprint, go_sprintf, go_str, go_truth, go_type
from weavenet.api.template_parse import (
    Command,
    Node,
    Operand,
    Parser,
    Pipe,
    TemplateError,
    position,
)

__all__ = ["Template", "TemplateError", "parse", "render"]


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _ExecError(Exception):
    def __init__(self, pos: int, msg: str) -> None:
        super().__init__(msg)
        self.pos = pos
        self.msg = msg


def _len(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, str | list | tuple | dict):
        return len(value)
    raise TypeError(f"len of type {type(value).__name__}")


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list | str) and isinstance(key, int):
            if not 0 <= key < len(value):
                raise IndexError(f"index out of range: {key}")
            value = value[key]
        else:
            raise TypeError(f"can't index item of type {type(value).__name__}")
    return value


def _slice(value: Any, *bounds: int) -> Any:
    if not isinstance(value, list | str):
        raise TypeError(f"can't slice item of type {type(value).__name__}")
    return value[slice(*bounds)] if bounds else value


def _compare(op: str) -> Callable[..., bool]:
    def compare(a: Any, b: Any) -> bool:
        numbers = (int, float)
        if isinstance(a, bool) != isinstance(b, bool) or (
            isinstance(a, numbers) != isinstance(b, numbers)
        ):
            raise TypeError("incompatible types for comparison")
        if op == "lt":
            return bool(a < b)
        if op == "le":
            return bool(a <= b)
        if op == "gt":
            return bool(a > b)
        return bool(a >= b)

    return compare


def _eq(a: Any, *others: Any) -> bool:
    if not others:
        raise TypeError("missing argument for comparison")
    return any(a == b and isinstance(a, bool) == isinstance(b, bool) for b in others)


def _and(*args: Any) -> Any:
    for arg in args:
        if not go_truth(arg):
            return arg
    return args[-1]


def _or(*args: Any) -> Any:
    for arg in args:
        if go_truth(arg):
            return arg
    return args[-1]


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "and": _and,
    "or": _or,
    "not": lambda x: not go_truth(x),
    "len": _len,
    "index": _index,
    "slice": _slice,
    "json": go_json,
    "printf": go_sprintf,
    "print": go_sprint,
    "println": lambda *a: " ".join(go_str(x, top=False) for x in a) + "\n",
    "eq": _eq,
    "ne": lambda a, b: not _eq(a, b),
    "lt": _compare("lt"),
    "le": _compare("le"),
    "gt": _compare("gt"),
    "ge": _compare("ge"),
}


class _State:
    def __init__(self, root: Any) -> None:
        self.vars: list[tuple[str, Any]] = [("$", root)]
        self.out: list[str] = []

    def lookup(self, name: str, pos: int) -> Any:
        for var, value in reversed(self.vars):
            if var == name:
                return value
        raise _ExecError(pos, f"undefined variable: {name}")

    def assign(self, name: str, value: Any, pos: int) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        raise _ExecError(pos, f"undefined variable: {name}")

    # --- nodes ---------------------------------------------------------------

    def walk(self, dot: Any, nodes: list[Node]) -> None:
        mark = len(self.vars)
        try:
            for node in nodes:
                self.node(dot, node)
        finally:
            del self.vars[mark:]

    def node(self, dot: Any, node: Node) -> None:
        if node.kind == "text":
            self.out.append(node.text)
        elif node.kind == "action":
            assert node.pipe is not None
            value = self.pipe(dot, node.pipe)
            if not node.pipe.decl:
                self.out.append(go_str(value))
        elif node.kind in ("if", "with"):
            self.conditional(dot, node)
        elif node.kind == "range":
            self.range(dot, node)
        elif node.kind == "break":
            raise _Break
        else:
            raise _Continue

    def conditional(self, dot: Any, node: Node) -> None:
        assert node.pipe is not None
        mark = len(self.vars)
        value = self.pipe(dot, node.pipe)
        try:
            if go_truth(value):
                self.walk(value if node.kind == "with" else dot, node.body)
            else:
                self.walk(dot, node.else_body)
        finally:
            del self.vars[mark:]

    def range(self, dot: Any, node: Node) -> None:
        assert node.pipe is not None
        mark = len(self.vars)
        decl = node.pipe.decl
        value = self.pipe(dot, node.pipe, declare=False)  # vars take the elements
        try:
            items = list(_iterate(value, node.pos))
            for key, elem in items:
                if len(decl) == 2:
                    self.vars.extend([(decl[0], key), (decl[1], elem)])
                elif decl:
                    self.vars.append((decl[0], elem))
                try:
                    self.walk(elem, node.body)
                except _Continue:
                    pass
                except _Break:
                    break
                finally:
                    del self.vars[mark:]
            if not items:
                self.walk(dot, node.else_body)
        finally:
            del self.vars[mark:]

    # --- pipelines -------------------------------------------------------------

    def pipe(self, dot: Any, pipe: Pipe, declare: bool = True) -> Any:
        value: Any = None
        for i, cmd in enumerate(pipe.cmds):
            value = self.command(dot, cmd, value, has_final=i > 0)
        if pipe.decl and declare:
            if pipe.is_assign:
                self.assign(pipe.decl[0], value, pipe.pos)
            else:
                self.vars.append((pipe.decl[-1], value))
        return value

    def command(self, dot: Any, cmd: Command, final: Any, has_final: bool) -> Any:
        first = cmd.args[0]
        if first.kind == "func":
            args = [self.operand(dot, a) for a in cmd.args[1:]]
            if has_final:
                args.append(final)
            try:
                return FUNCTIONS[first.value](*args)
            except (TypeError, ValueError, IndexError) as exc:
                raise _ExecError(first.pos, f"error calling {first.value}: {exc}") from None
        if len(cmd.args) > 1 or has_final:
            raise _ExecError(first.pos, f"can't give argument to non-function {_describe(first)}")
        return self.operand(dot, first)

    def operand(self, dot: Any, op: Operand) -> Any:
        if op.kind == "field":
            return self.fields(dot, op)
        if op.kind == "dot":
            base = dot
        elif op.kind == "var":
            base = self.lookup(op.value, op.pos)
        elif op.kind == "pipe":
            base = self.pipe(dot, op.value)
        elif op.kind == "func":
            return self.command(dot, Command([op], op.pos), None, False)
        else:
            base = op.value
        return self.fields(base, op)

    def fields(self, value: Any, op: Operand) -> Any:
        for name in op.fields:
            if isinstance(value, dict):
                value = value.get(name)
            elif value is None:
                raise _ExecError(op.pos, f"nil pointer evaluating {_describe(op)}")
            else:
                kind = go_type(value)
                raise _ExecError(op.pos, f"can't evaluate field {name} in type {kind}")
        return value


def _describe(op: Operand) -> str:
    chain = "".join("." + f for f in op.fields)
    if op.kind == "var":
        return f"<{op.value}{chain}>"
    if op.kind == "func":
        return f"<{op.value}>"
    if op.kind == "lit":
        return f"<{go_str(op.value, top=False)}>"
    if op.kind == "pipe":
        return f"<(...){chain}>"
    return f"<{chain or '.'}>"


def _iterate(value: Any, pos: int) -> Iterator[tuple[Any, Any]]:
    if value is None:
        return iter(())
    if isinstance(value, list | tuple):
        return iter(enumerate(value))
    if isinstance(value, dict):
        return iter(sorted(value.items(), key=lambda kv: str(kv[0])))
    if isinstance(value, int) and not isinstance(value, bool):
        return iter((i, i) for i in range(value))
    raise _ExecError(pos, f"range can't iterate over {go_str(value)}")


class Template:
    """A parsed template; :meth:`execute` renders it against some data."""

    def __init__(self, text: str, name: str = "format") -> None:
        self.text = text
        self.name = name
        self.nodes = Parser(text, name).parse()

    def execute(self, data: Any) -> str:
        state = _State(data)
        try:
            state.walk(data, self.nodes)
        except _ExecError as exc:
            where = position(self.text, self.name, exc.pos)
            raise TemplateError(f'{where}: executing "{self.name}": {exc.msg}') from None
        except (_Break, _Continue):
            raise TemplateError(f"template: {self.name}: break/continue outside range") from None
        return "".join(state.out)


def parse(text: str, name: str = "format") -> Template:
    """Parse ``text``; raise :class:`TemplateError` (with line:col) on a syntax error."""
    return Template(text, name)


def render(text: str, data: Any, name: str = "format") -> str:
    """Parse and execute ``text`` against ``data`` in one go."""
    return Template(text, name).execute(data)
