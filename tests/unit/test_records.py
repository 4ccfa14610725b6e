"""Record classes under src/weavenet are msgspec Structs, not dataclasses.

Python 3.11's ``@dataclass`` costs 0.4-0.8 ms of CPU per class at import (it exec's each
generated method), which every router start pays; a Struct class costs ~16 us.
"""

from __future__ import annotations

import re
from pathlib import Path

import weavenet

PACKAGE = Path(weavenet.__file__).parent
DECORATOR = re.compile(r"^\s*@(dataclasses\.)?dataclass\b", re.M)


def test_no_dataclass_under_src() -> None:
    found = [
        f"{path.relative_to(PACKAGE)}:{text[: m.start()].count(chr(10)) + 1}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for text in [path.read_text()]
        for m in DECORATOR.finditer(text)
    ]
    assert found == [], f"use msgspec.Struct (see this test's doc) instead of @dataclass: {found}"
