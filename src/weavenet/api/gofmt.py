"""Go-compatible value formatting for templates: fmt's %v, Printf and json.Marshal.

Values are plain JSON-like Python data (dict, list, str, int, float, bool, None).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

NO_VALUE = "<no value>"

_VERB = re.compile(r"%([-+# 0]*)(\*|\d+)?(?:\.(\*|\d+)?)?([a-zA-Z%])")
_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}
_HTML_ESCAPE_RE = re.compile("[<>&\u2028\u2029]")


def go_float(x: float) -> str:
    """Format a float like Go's ``%v`` (shortest repr, exponent from 1e21)."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if x == int(x) and abs(x) < 1e21:
        return str(int(x))
    text = repr(x)
    if "e" not in text:
        return text
    mantissa, exp = text.split("e")
    sign = "-" if exp.startswith("-") else "+"
    return f"{mantissa}e{sign}{int(exp.lstrip('+-')):02d}"


def go_str(value: Any, top: bool = True) -> str:
    """Format ``value`` the way Go's fmt ``%v`` prints it."""
    if value is None:
        return NO_VALUE if top else "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
        return "map[" + " ".join(f"{go_str(k, False)}:{go_str(v, False)}" for k, v in items) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_str(v, False) for v in value) + "]"
    return str(value)


def _html_escape(match: re.Match[str]) -> str:
    char = match.group(0)
    return _HTML_ESCAPES.get(char) or f"\\u{ord(char):04x}"


def go_json(value: Any, indent: int | None = None) -> str:
    """``json.Marshal`` / ``json.MarshalIndent(v, "", indent)``: compact, HTML-safe."""
    if indent is None:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    else:
        text = json.dumps(value, indent=indent, ensure_ascii=False)
    return _HTML_ESCAPE_RE.sub(_html_escape, text)


def go_quote(text: str) -> str:
    """``strconv.Quote``-like double-quoted string."""
    return json.dumps(text, ensure_ascii=False)


def _pad(text: str, flags: str, width: int | None) -> str:
    if width is None or len(text) >= width:
        return text
    if "-" in flags:
        return text.ljust(width)
    if "0" in flags and text[:1] in "+-" and text[1:2].isdigit():
        return text[0] + text[1:].rjust(width - 1, "0")
    if "0" in flags and text[:1].isdigit():
        return text.rjust(width, "0")
    return text.rjust(width)


def _num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError
    return value


def _format_number(verb: str, value: Any, flags: str, prec: int | None) -> str:
    sign = "+" if "+" in flags else ""
    if verb == "d":
        return format(int(_num(value)), sign + "d")
    if verb in "xX":
        if isinstance(value, str):
            return value.encode().hex() if verb == "x" else value.encode().hex().upper()
        return format(int(_num(value)), verb)
    if verb == "o":
        return format(int(_num(value)), "o")
    if verb == "b":
        return format(int(_num(value)), "b")
    precision = 6 if prec is None else prec
    return format(float(_num(value)), f"{sign}.{precision}{verb}")


def _format_one(verb: str, value: Any, flags: str, prec: int | None) -> str:
    if verb in "vs":
        text = go_str(value, top=False) if value is not None else "<nil>"
        return text if prec is None else text[:prec]
    if verb == "q":
        return go_quote(value if isinstance(value, str) else go_str(value, False))
    if verb == "t":
        if not isinstance(value, bool):
            raise TypeError
        return go_str(value)
    if verb == "T":
        return go_type(value)
    try:
        return _format_number(verb, value, flags, prec)
    except (TypeError, ValueError):
        return f"%!{verb}({go_type(value)}={go_str(value, False)})"


def go_type(value: Any) -> str:
    names = {bool: "bool", int: "int", float: "float64", str: "string"}
    if value is None:
        return "<nil>"
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    return names.get(type(value), type(value).__name__)


def go_sprintf(fmt: str, *args: Any) -> str:
    """A useful subset of Go's ``fmt.Sprintf``: %v %s %q %d %x %o %b %t %T %e %f %g %%."""
    out: list[str] = []
    pos = 0
    argi = 0
    for match in _VERB.finditer(fmt):
        out.append(fmt[pos : match.start()])
        pos = match.end()
        flags, width_s, prec_s, verb = match.groups()
        if verb == "%":
            out.append("%")
            continue
        width = int(width_s) if width_s and width_s != "*" else None
        prec = int(prec_s) if prec_s and prec_s != "*" else (0 if "." in match.group(0) else None)
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        value = args[argi]
        argi += 1
        out.append(_pad(_format_one(verb, value, flags, prec), flags, width))
    out.append(fmt[pos:])
    if argi < len(args):
        extra = ", ".join(f"{go_type(a)}={go_str(a, False)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def go_sprint(*args: Any) -> str:
    """Go's ``fmt.Sprint``: a space between operands when neither is a string."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if i > 0 and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_str(arg, top=False))
    return "".join(out)


def go_truth(value: Any) -> bool:
    """Template truthiness: false, 0, nil and empty string/list/map are false."""
    if value is None or value is False:
        return False
    if isinstance(value, int | float | str | list | tuple | dict):
        return bool(value)
    return True
