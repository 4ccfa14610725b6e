"""fastdp's kernel plan: applying the diff to a model kernel leaves nothing to do."""

from __future__ import annotations

import msgspec.structs
from hypothesis import given
from hypothesis import strategies as st

from weavenet.core.overlay.vxlan_plan import (
    ZERO_MAC,
    AddPin,
    CreateDevice,
    DelFdb,
    DelPort,
    DeviceSeen,
    DeviceSpec,
    FixDevice,
    IsolateTap,
    Observed,
    Op,
    VxlanConfig,
    additions_only,
    diff,
    plan,
)

CONFIG = VxlanConfig("weave", "weave-tap", 1376, 6784)
MACS = [bytes([2, 0, 0, 0, 0, i]) for i in range(6)] + [bytes(6)]
IPS = ["10.0.0.2", "10.0.0.3", "10.0.0.4"]


def _text(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def _seen(spec: DeviceSpec) -> DeviceSeen:
    return DeviceSeen(
        spec.vni, spec.port, spec.mtu, spec.learning, spec.bridge, True, spec.bridge is not None
    )


class ModelKernel:
    """What the dataplane's verbs do, on the plan's own terms."""

    def __init__(self, observed: Observed) -> None:
        self.state = observed

    def apply(self, op: Op) -> None:
        s = self.state
        if isinstance(op, CreateDevice | FixDevice):
            if op.spec.name == CONFIG.data_device().name:
                fresh = isinstance(op, CreateDevice)
                self.state = msgspec.structs.replace(
                    s,
                    data=_seen(op.spec),
                    fdb=frozenset() if fresh else s.fdb,
                    port=frozenset() if fresh else s.port,
                )
            else:
                self.state = msgspec.structs.replace(s, heartbeat=_seen(op.spec))
        elif isinstance(op, IsolateTap):
            self.state = msgspec.structs.replace(s, tap_isolated=True)
        elif isinstance(op, AddPin):
            fdb = {e for e in s.fdb if e[0] != op.mac} | {(op.mac, op.ip, True)}
            port = {e for e in s.port if e[0] != op.mac} | {(op.mac, True)}
            self.state = msgspec.structs.replace(s, fdb=frozenset(fdb), port=frozenset(port))
        elif isinstance(op, DelFdb):
            self.state = msgspec.structs.replace(
                s, fdb=frozenset(e for e in s.fdb if e[:2] != (op.mac, op.ip))
            )
        elif isinstance(op, DelPort):
            self.state = msgspec.structs.replace(
                s, port=frozenset(e for e in s.port if e[0] != op.mac)
            )


macs = st.sampled_from(MACS).map(_text)
device = st.one_of(
    st.none(),
    st.builds(
        DeviceSeen,
        st.sampled_from([0x574E01, 0x574E02, 7]),
        st.sampled_from([6784, 4789]),
        st.sampled_from([1376, 1500]),
        st.booleans(),
        st.sampled_from([None, "weave", "other"]),
        st.booleans(),
        st.booleans(),
    ),
)
observed = st.builds(
    Observed,
    device,
    device,
    st.booleans(),
    st.frozensets(st.tuples(macs, st.sampled_from(IPS), st.booleans()), max_size=8),
    st.frozensets(st.tuples(macs, st.booleans()), max_size=6),
)
peers = st.dictionaries(st.integers(1, 3), st.sampled_from(IPS), max_size=3)
owners = st.lists(st.tuples(st.sampled_from(MACS[:-1]), st.integers(0, 4)), max_size=8)


@given(observed, peers, owners)
def test_apply_then_observe_leaves_an_empty_diff(
    seen: Observed, peer_ips: dict[int, str], mac_owners: list[tuple[bytes, int]]
) -> None:
    latest: dict[bytes, int] = dict(mac_owners)  # a MAC cache has one owner per MAC
    desired = plan(CONFIG, peer_ips, latest.items())
    kernel = ModelKernel(seen)
    for op in diff(desired, seen):
        kernel.apply(op)
    assert diff(desired, kernel.state) == []
    fdb = kernel.state.fdb
    assert all(ip in desired.peer_ips and mac != ZERO_MAC for mac, ip, _ in fdb)
    assert {(mac, ip) for mac, ip, permanent in fdb if permanent} == set(desired.pins)


def test_a_pin_goes_to_the_owner_only_while_fastdp_carries_it() -> None:
    mac = bytes.fromhex("0200000000aa")
    desired = plan(CONFIG, {2: "10.0.0.2"}, [(mac, 2), (bytes.fromhex("0200000000bb"), 3)])
    assert desired.pins == frozenset({("02:00:00:00:00:aa", "10.0.0.2")})
    assert plan(CONFIG, {}, [(mac, 2)]).pins == frozenset()


@given(observed, peers, owners, peers, owners)
def test_additions_without_observing_reach_the_same_kernel_state(
    seen: Observed,
    peer_ips: dict[int, str],
    mac_owners: list[tuple[bytes, int]],
    more_ips: dict[int, str],
    more_owners: list[tuple[bytes, int]],
) -> None:
    """A plan that only grows the last one, applied blindly to the kernel the last full
    round left, leaves nothing for a full diff to do; a plan that drops anything is
    refused (None), so the shell observes the kernel for it."""
    first = plan(CONFIG, peer_ips, dict(mac_owners).items())
    kernel = ModelKernel(seen)
    for op in diff(first, seen):
        kernel.apply(op)
    second = plan(
        CONFIG, {**more_ips, **peer_ips}, {**dict(more_owners), **dict(mac_owners)}.items()
    )
    ops = additions_only(first, second)
    if ops is None:
        assert not (first.pins <= second.pins and first.peer_ips <= second.peer_ips)
        return
    for op in ops:
        kernel.apply(op)
    assert diff(second, kernel.state) == []
