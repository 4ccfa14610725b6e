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


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _core_import_graph() -> dict[str, set[str]]:
    """weavenet.core module -> the core modules it imports, including imports under
    ``if TYPE_CHECKING:`` and ``from package import module``."""
    modules = {_module_name(p): p for p in (PACKAGE / "core").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                targets.add(node.module)
                targets.update(f"{node.module}.{alias.name}" for alias in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path [a, b, ..., a], or None (depth-first search)."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for target in sorted(graph[node]):
            cycle = visit(target)
            if cycle is not None:
                return cycle
        path.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start)
        if cycle is not None:
            return cycle
    return None


def test_find_cycle_finds_one() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _find_cycle(graph) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_core_imports_have_no_cycle() -> None:
    graph = _core_import_graph()
    assert "weavenet.core.mesh.router" in graph  # the graph really covers the core
    assert "weavenet.core.mesh.gossip_routing" in graph["weavenet.core.mesh.router"]
    assert _find_cycle(graph) is None


def _router_private_accesses(path: Path) -> list[str]:
    """``router._x`` / ``<anything>.router._x`` (dunders aside), as 'line: text'."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
            continue
        if node.attr.startswith("__"):
            continue
        owner = node.value
        if (isinstance(owner, ast.Name) and owner.id == "router") or (
            isinstance(owner, ast.Attribute) and owner.attr == "router"
        ):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_private_access_check_catches_both_forms(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("router._now\nself.router._touched\nrouter.name\nrouter.__class__\n")
    assert _router_private_accesses(sample) == ["1: router._now", "2: self.router._touched"]


def test_nothing_outside_router_py_touches_router_privates() -> None:
    root = PACKAGE.parent.parent
    own = PACKAGE / "core" / "mesh" / "router.py"
    paths = [p for d in ("src", "tests", "bench", "scripts") for p in (root / d).rglob("*.py")]
    assert own in paths
    offenders = {
        str(p.relative_to(root)): hits
        for p in paths
        if p != own and (hits := _router_private_accesses(p))
    }
    assert offenders == {}
