"""The router's side of the plugin's netlink work: requests are checked before the kernel
is touched, and act in the plugin's namespaces."""

from __future__ import annotations

import asyncio

import pytest

from weavenet.io.cni_kernel import CniKernel, CniRequestError, _paths


def test_paths_are_the_plugins_view() -> None:
    assert _paths({"pid": 42, "netns": "/run/netns/x"}) == (
        "/proc/42/ns/net",
        "/proc/42/root/run/netns/x",
    )


@pytest.mark.parametrize(
    "req",
    [
        {"netns": "/n"},
        {"pid": 0, "netns": "/n"},
        {"pid": "1", "netns": "/n"},
        {"pid": 1, "netns": "relative"},
        {"pid": 1},
    ],
)
def test_bad_requests_are_refused(req: dict[str, object]) -> None:
    with pytest.raises(CniRequestError):
        _paths(req)


def test_unknown_operation_is_refused() -> None:
    with pytest.raises(CniRequestError, match="unknown operation"):
        asyncio.run(CniKernel().run("format-disk", {}))


def test_the_handlers_call_functions_whatever_was_imported_first() -> None:
    """Once weavenet.dataplane.attach is imported, the package attribute `attach` is that
    module: the attach handler once called it and failed every ADD ('module' object is
    not callable)."""
    import weavenet.dataplane.attach
    from weavenet.io import cni_kernel

    assert callable(cni_kernel.attach_container)
    assert cni_kernel.attach_container is weavenet.dataplane.attach.attach
    assert cni_kernel.detach_container is weavenet.dataplane.attach.detach


def test_operations_answer_their_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    from weavenet.io import cni_kernel

    monkeypatch.setitem(cni_kernel.OPERATIONS, "probe", lambda req: {"echo": req["x"]})
    answer = asyncio.run(CniKernel().run("probe", {"x": 1}))
    assert answer["echo"] == 1
    assert set(answer["timing"]) == {"queue_ms", "work_ms", "cpu_ms"}
