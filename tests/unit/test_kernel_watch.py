"""fastdp's kernel watcher: which netlink notifications are decoded (the dataplane's
cheap filter) and which of those mean drift from the plan (the core's judgement). The
messages are made with pyroute2's own message classes, as the kernel would send them."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from weavenet.core.overlay.fastdp import DATA_VNI
from weavenet.core.overlay.vxlan_plan import VxlanConfig, plan
from weavenet.core.overlay.vxlan_watch import (
    DeviceIndexes,
    EventsLost,
    FdbGone,
    LinkGone,
    LinkSeen,
    PortChanged,
    drifted,
)
from weavenet.dataplane.kernel_watch import parse
from weavenet.lean_import import lean_package

lean_package("pyroute2")
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg  # noqa: E402
from pyroute2.netlink.rtnl.ndmsg import ndmsg  # noqa: E402

RTM_NEWLINK, RTM_DELLINK, RTM_NEWNEIGH, RTM_DELNEIGH = 16, 17, 28, 29
AF_UNSPEC, AF_INET, AF_BRIDGE = 0, 2, 7
NTF_SELF, NTF_MASTER = 0x02, 0x04
CONFIG = VxlanConfig("weave", "weave-tap", 1376, 6784)
INDEXES = DeviceIndexes(data=10, heartbeat=11, bridge=3)
MAC, PEER_IP = "02:00:00:00:00:07", "172.31.250.2"
DESIRED = plan(CONFIG, {7: PEER_IP}, [(bytes.fromhex("020000000007"), 7)])


def _encoded(msg: Any, kind: int) -> bytes:
    msg["header"]["type"] = kind
    msg.encode()
    return bytes(msg.data)


def _neigh(kind: int, ifindex: int, dst: str | None, family: int = AF_BRIDGE) -> bytes:
    msg = ndmsg()
    msg["family"], msg["ifindex"], msg["state"] = family, ifindex, 0x80
    msg["flags"] = NTF_SELF if dst else NTF_MASTER
    msg["attrs"] = [("NDA_LLADDR", MAC)] + ([("NDA_DST", dst)] if dst else [])
    return _encoded(msg, kind)


def _link(kind: int, index: int, name: str, up: bool = True, **vxlan: int) -> bytes:
    data = {"IFLA_VXLAN_ID": DATA_VNI, "IFLA_VXLAN_PORT": 6784, "IFLA_VXLAN_LEARNING": 1} | {
        f"IFLA_VXLAN_{key.upper()}": value for key, value in vxlan.items()
    }
    info = {
        "attrs": [
            ("IFLA_INFO_KIND", "vxlan"),
            ("IFLA_INFO_DATA", {"attrs": list(data.items())}),
            ("IFLA_INFO_SLAVE_KIND", "bridge"),
            ("IFLA_INFO_SLAVE_DATA", {"attrs": [("IFLA_BRPORT_ISOLATED", 1)]}),
        ]
    }
    msg = ifinfmsg()
    msg["family"], msg["index"], msg["flags"] = AF_UNSPEC, index, 1 if up else 0
    msg["attrs"] = [("IFLA_IFNAME", name), ("IFLA_MTU", 1376), ("IFLA_MASTER", 3)]
    msg["attrs"].append(("IFLA_LINKINFO", info))
    return _encoded(msg, kind)


def _port(index: int, name: str, isolated: int | None) -> bytes:
    """The bridge's RTM_NEWLINK (AF_BRIDGE) about its port."""
    msg = ifinfmsg()
    msg["family"], msg["index"], msg["flags"] = AF_BRIDGE, index, 1
    msg["attrs"] = [("IFLA_IFNAME", name), ("IFLA_MASTER", 3)]
    if isolated is not None:
        protinfo = [("IFLA_BRPORT_STATE", 3), ("IFLA_BRPORT_ISOLATED", isolated)]
        msg["attrs"].append(("IFLA_PROTINFO", {"attrs": protinfo}))
    return _encoded(msg, RTM_NEWLINK)


def test_deleted_vxlan_entry_of_a_pin_is_drift() -> None:
    events = parse(_neigh(RTM_DELNEIGH, 10, PEER_IP), INDEXES, CONFIG)
    assert events == [FdbGone(MAC, PEER_IP)]
    assert drifted(events[0], DESIRED, INDEXES)


def test_deleted_bridge_entry_of_a_pinned_mac_is_drift() -> None:
    events = parse(_neigh(RTM_DELNEIGH, 10, None), INDEXES, CONFIG)
    assert events == [FdbGone(MAC, None)]
    assert drifted(events[0], DESIRED, INDEXES)


def test_deleted_entries_the_plan_does_not_hold_are_not_drift() -> None:
    """Our own rounds delete learnt and stale entries; the kernel ages learnt ones out."""
    assert not drifted(FdbGone(MAC, "172.31.250.9"), DESIRED, INDEXES)
    assert not drifted(FdbGone("02:00:00:00:00:08", None), DESIRED, INDEXES)


def test_neighbour_messages_not_about_our_data_device_are_skipped() -> None:
    skipped = [
        _neigh(RTM_NEWNEIGH, 10, PEER_IP),  # learnt or pinned: additions are no drift
        _neigh(RTM_DELNEIGH, 12, PEER_IP),  # another device's entry
        _neigh(RTM_DELNEIGH, 10, PEER_IP, family=AF_INET),  # an ARP entry
    ]
    assert parse(b"".join(skipped), INDEXES, CONFIG) == []


def test_a_datagram_of_many_messages_yields_ours_in_order() -> None:
    data = b"".join(
        [
            _neigh(RTM_NEWNEIGH, 10, PEER_IP),
            _link(RTM_DELLINK, 11, "vxhb-6784"),
            _link(RTM_DELLINK, 40, "veth-other"),
            _neigh(RTM_DELNEIGH, 10, PEER_IP),
        ]
    )
    assert parse(data, INDEXES, CONFIG) == [LinkGone(11), FdbGone(MAC, PEER_IP)]


def test_our_device_deleted_is_drift_another_is_ignored() -> None:
    assert parse(_link(RTM_DELLINK, 10, "vxlan-6784"), INDEXES, CONFIG) == [LinkGone(10)]
    assert drifted(LinkGone(10), DESIRED, INDEXES)
    assert drifted(LinkGone(11), DESIRED, INDEXES)
    assert not drifted(LinkGone(12), DESIRED, INDEXES)  # an index we no longer watch


def test_our_device_as_planned_is_no_drift() -> None:
    (event,) = parse(_link(RTM_NEWLINK, 10, "vxlan-6784"), INDEXES, CONFIG)
    assert isinstance(event, LinkSeen) and event.seen.bridge == "weave" and event.seen.isolated
    assert not drifted(event, DESIRED, INDEXES)


def test_our_device_down_renamed_or_reconfigured_is_drift() -> None:
    changed = [
        _link(RTM_NEWLINK, 10, "vxlan-6784", up=False),
        _link(RTM_NEWLINK, 10, "renamed"),
        _link(RTM_NEWLINK, 10, "vxlan-6784", learning=0),
        _link(RTM_NEWLINK, 10, "vxlan-6784", port=4789),
    ]
    for data in changed:
        (event,) = parse(data, INDEXES, CONFIG)
        assert drifted(event, DESIRED, INDEXES), event


def test_our_device_under_another_master_is_drift() -> None:
    (event,) = parse(_link(RTM_NEWLINK, 10, "vxlan-6784"), DeviceIndexes(10, 11, 4), CONFIG)
    assert isinstance(event, LinkSeen) and event.seen.bridge is None
    assert drifted(event, DESIRED, INDEXES)


def test_our_ports_must_stay_isolated() -> None:
    """The bridge's view of its ports: the data device and the TAP (by name: re-created,
    it has an index we never saw) must be isolated; other ports do not matter."""
    cases = {
        _port(10, "vxlan-6784", 1): (PortChanged(10, "vxlan-6784", True), False),
        _port(10, "vxlan-6784", 0): (PortChanged(10, "vxlan-6784", False), True),
        _port(10, "vxlan-6784", None): (PortChanged(10, "vxlan-6784", None), True),
        _port(44, "weave-tap", 0): (PortChanged(44, "weave-tap", False), True),
        _port(44, "weave-tap", 1): (PortChanged(44, "weave-tap", True), False),
        _port(45, "vethwepl1234", 0): (PortChanged(45, "vethwepl1234", False), False),
    }
    for data, (expected, drift) in cases.items():
        assert parse(data, INDEXES, CONFIG) == [expected]
        assert drifted(expected, DESIRED, INDEXES) is drift, expected


def test_nothing_is_watched_before_the_devices_are_known() -> None:
    data = _link(RTM_DELLINK, 10, "vxlan-6784") + _neigh(RTM_DELNEIGH, 10, PEER_IP)
    assert parse(data, DeviceIndexes(), CONFIG) == []


def test_lost_notifications_are_drift() -> None:
    assert drifted(EventsLost(), DESIRED, INDEXES)


def test_a_truncated_message_ends_the_datagram() -> None:
    whole = _neigh(RTM_DELNEIGH, 10, PEER_IP)
    assert parse(whole + whole[:-4], INDEXES, CONFIG) == [FdbGone(MAC, PEER_IP)]


def test_indexes_follow_recreated_devices() -> None:
    updated = INDEXES.updated({"vxlan-6784": 20}, DESIRED)
    assert updated == DeviceIndexes(20, 11, 3)


@given(st.binary(max_size=300))
def test_random_bytes_parse_to_events_or_nothing(data: bytes) -> None:
    events = parse(data, INDEXES, CONFIG)
    assert all(
        isinstance(e, LinkGone | LinkSeen | PortChanged | FdbGone | EventsLost) for e in events
    )


OURS = [
    _neigh(RTM_DELNEIGH, 10, PEER_IP),
    _link(RTM_NEWLINK, 10, "vxlan-6784"),
    _port(10, "vxlan-6784", 1),
    _link(RTM_DELLINK, 11, "vxhb-6784"),
]


@given(
    st.sampled_from(OURS),
    st.lists(st.tuples(st.integers(16, 200), st.integers(0, 255)), min_size=1, max_size=6),
)
def test_our_messages_corrupted_past_the_header_never_raise(
    message: bytes, changes: list[tuple[int, int]]
) -> None:
    """A message of our kind and index whose body pyroute2 cannot decode is a reason to
    look (EventsLost), never an exception on the event loop."""
    corrupt = bytearray(message)
    for offset, value in changes:
        corrupt[offset % len(corrupt)] = value
    events = parse(bytes(corrupt), INDEXES, CONFIG)
    assert len(events) <= 1
