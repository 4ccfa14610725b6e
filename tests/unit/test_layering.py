"""The architecture, enforced: the core does no I/O, and only the dataplane talks to the
kernel (through pyroute2)."""

from __future__ import annotations

import ast
from pathlib import Path

import weavenet

PACKAGE = Path(weavenet.__file__).parent
CORE_FORBIDDEN = {
    "asyncio",
    "socket",
    "subprocess",
    "threading",
    "time",
    "os",
    "selectors",
    "pyroute2",
    "aiohttp",
    "lmdb",
    "click",
    "prometheus_client",
    "weavenet.io",
    "weavenet.api",
    "weavenet.cli",
    "weavenet.daemon",
    "weavenet.harness",
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _forbidden(name: str) -> bool:
    return any(name == bad or name.startswith(bad + ".") for bad in CORE_FORBIDDEN)


def test_core_is_pure() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(n for n in _imports(path) if _forbidden(n))
        for path in (PACKAGE / "core").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_only_the_dataplane_imports_pyroute2() -> None:
    users = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if any(n == "pyroute2" or n.startswith("pyroute2.") for n in _imports(path))
    ]
    assert all(u.startswith(("dataplane/", "harness/")) for u in users), users


def test_core_never_reads_the_clock_or_global_random() -> None:
    for path in (PACKAGE / "core").rglob("*.py"):
        source = path.read_text()
        for call in ("time.time(", "time.monotonic(", "random.random(", "random.randint("):
            assert call not in source, f"{path.name} calls {call}"
