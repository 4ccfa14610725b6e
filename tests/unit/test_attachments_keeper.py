"""The router's attachments shell over a real LMDB store and a modelled kernel: what is
committed when, what is released, and how failures roll back."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

import pytest

import weavenet.io.attachments as shell
from weavenet.core.attachments import (
    AttachmentError,
    AttachRequest,
    ContainerState,
    CreateInterface,
    KernelAction,
    LinkState,
    Observation,
)
from weavenet.dataplane import DataplaneError
from weavenet.io.attachments import AttachmentKeeper
from weavenet.io.store import Store

IF = ipaddress.IPv4Interface
MAC = "02:00:00:00:00:07"


class Kernel:
    """ident -> what is in the container; `applied` lists the kernel actions carried out."""

    def __init__(self) -> None:
        self.present: dict[str, ContainerState] = {}
        self.links: dict[str, LinkState | None] = {}
        self.applied: list[KernelAction] = []
        self.refuse = False

    def apply(self, action: KernelAction, bridge: str) -> str:
        if self.refuse:
            raise DataplaneError("attach: Operation not permitted")
        self.applied.append(action)
        att = action.attachment
        mac = att.mac or MAC
        self.links[att.ident] = LinkState(mac, frozenset(att.cidrs), True, True)
        return mac

    def detach(self, ref: object, cidrs: list[IF] | None) -> list[IF]:
        link = self.links.get(ref.ident)  # type: ignore[attr-defined]
        if link is None:
            return []
        ips = None if cidrs is None else {c.ip for c in cidrs}
        removed = [c for c in link.cidrs if ips is None or c.ip in ips]
        left = link.cidrs - set(removed)
        self.links[ref.ident] = None if not left else LinkState(link.mac, left, True, True)  # type: ignore[attr-defined]
        return sorted(removed)

    def observe(self, att: object, bridge: str) -> Observation:
        ident = att.ident  # type: ignore[attr-defined]
        state = self.present.get(ident, ContainerState.RUNNING)
        if state is not ContainerState.RUNNING:
            return Observation(state)
        return Observation(state, f"/ns/{ident}", "1:1", self.links.get(ident))


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> Kernel:
    k = Kernel()
    monkeypatch.setattr(shell, "apply", k.apply)
    monkeypatch.setattr(shell, "observe", k.observe)
    monkeypatch.setattr(shell, "netns_identity", lambda path: "1:1")
    monkeypatch.setattr(shell, "keep_bridge", lambda bridge, firewall: None)
    monkeypatch.setattr(shell.dataplane, "detach", k.detach)
    return k


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path)
    yield s  # type: ignore[misc]
    s.close()


def request(ident: str = "netns:c1", *cidrs: str) -> AttachRequest:
    return AttachRequest(
        ident, ident, f"/ns/{ident}", tuple(IF(c) for c in cidrs or ["10.2.1.1/24"])
    )


def test_attach_commits_then_records_the_mac(kernel: Kernel, store: Store) -> None:
    keeper = AttachmentKeeper(store, "weave", None)
    att = asyncio.run(keeper.attach(request()))
    assert att.mac == MAC
    (saved,) = store.load_attachments()
    assert saved == att and saved.netns_id == "1:1"
    again = asyncio.run(keeper.attach(request("netns:c1", "10.2.2.1/24")))
    assert again.cidrs == (IF("10.2.1.1/24"), IF("10.2.2.1/24")) and again.mac == MAC


def test_a_refused_attach_leaves_nothing_behind(kernel: Kernel, store: Store) -> None:
    keeper = AttachmentKeeper(store, "weave", None)
    asyncio.run(keeper.attach(request()))
    kernel.refuse = True
    with pytest.raises(AttachmentError) as err:
        asyncio.run(keeper.attach(request("netns:c1", "10.2.2.1/24")))
    assert err.value.internal
    with pytest.raises(AttachmentError):
        asyncio.run(keeper.attach(request("netns:c2")))
    assert [a.cidrs for a in store.load_attachments()] == [(IF("10.2.1.1/24"),)]
    assert [a.ident for a in keeper.attachments()] == ["netns:c1"]


def test_gone_container_is_dropped_before_its_addresses_are_released(
    kernel: Kernel, store: Store
) -> None:
    seen_in_store: list[list[str]] = []

    def release(ident: str) -> None:
        seen_in_store.append([a.ident for a in store.load_attachments()])

    keeper = AttachmentKeeper(store, "weave", release)
    asyncio.run(keeper.attach(request("netns:c1")))
    asyncio.run(keeper.attach(request("netns:c2", "10.2.1.2/24")))
    kernel.present["netns:c1"] = ContainerState.REMOVED
    asyncio.run(keeper.reconcile())
    assert seen_in_store == [["netns:c2"]], "committed first, then released"
    assert [a.ident for a in keeper.attachments()] == ["netns:c2"]


def test_lost_interface_is_recreated_with_its_mac_and_restored_after_restart(
    kernel: Kernel, store: Store
) -> None:
    asyncio.run(AttachmentKeeper(store, "weave", None).attach(request()))
    kernel.links["netns:c1"] = None  # ethwe deleted while the router was down
    kernel.applied.clear()
    restarted = AttachmentKeeper(store, "weave", None)  # loads the store
    asyncio.run(restarted.reconcile())
    (action,) = kernel.applied
    assert isinstance(action, CreateInterface) and action.attachment.mac == MAC
    asyncio.run(restarted.reconcile())
    assert len(kernel.applied) == 1, "nothing left to do"


def test_detach_all_drops_and_releases_partial_does_not(kernel: Kernel, store: Store) -> None:
    released: list[str] = []
    keeper = AttachmentKeeper(store, "weave", released.append)
    asyncio.run(keeper.attach(request("netns:c1", "10.2.1.1/24", "10.2.2.1/24")))
    removed, dropped = asyncio.run(keeper.detach("netns:c1", None, [IF("10.2.2.1/24").ip]))
    assert (removed, dropped, released) == ([IF("10.2.2.1/24")], False, [])
    removed, dropped = asyncio.run(keeper.detach("netns:c1", None, None))
    assert (removed, dropped, released) == ([IF("10.2.1.1/24")], True, ["netns:c1"])
    assert store.load_attachments() == []
