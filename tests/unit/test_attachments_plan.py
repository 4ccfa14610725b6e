"""The attachment planner: what to do for what the dataplane observed, and idempotence."""

from __future__ import annotations

import ipaddress

import msgspec.structs
from hypothesis import given
from hypothesis import strategies as st

from weavenet.core.attachments import (
    Action,
    AddAddresses,
    AddMulticastRoute,
    Attachment,
    AttachmentTable,
    ContainerState,
    CreateInterface,
    Drop,
    LinkState,
    Observation,
    ReattachPort,
    Rebind,
    RecordMac,
    plan,
    plan_one,
)

IF = ipaddress.IPv4Interface
MAC = "02:00:00:00:00:01"


def att(spec: str = "netns:c1", *cidrs: str, mac: str | None = MAC) -> Attachment:
    return Attachment(
        ident=spec,
        spec=spec,
        netns_path=f"/run/netns/{spec}",
        netns_id="1:10",
        cidrs=tuple(IF(c) for c in (cidrs or ("10.2.1.1/24",))),
        mac=mac,
    )


def link(*cidrs: str, mac: str = MAC, route: bool = True, on_bridge: bool = True) -> LinkState:
    return LinkState(mac, frozenset(IF(c) for c in cidrs), route, on_bridge)


def running(a: Attachment, lnk: LinkState | None, netns_id: str = "1:10") -> Observation:
    return Observation(ContainerState.RUNNING, a.netns_path, netns_id, lnk)


def test_in_sync_plans_nothing() -> None:
    a = att()
    assert plan_one(a, running(a, link("10.2.1.1/24"))) == []


def test_lost_ethwe_is_recreated() -> None:
    a = att()
    assert plan_one(a, running(a, None)) == [CreateInterface(a)]


def test_missing_address_route_and_port() -> None:
    a = att("netns:c1", "10.2.1.1/24", "10.2.2.1/24")
    obs = running(a, link("10.2.1.1/24", route=False, on_bridge=False))
    assert plan_one(a, obs) == [
        AddAddresses(a, (IF("10.2.2.1/24"),)),
        AddMulticastRoute(a),
        ReattachPort(a),
    ]


def test_no_multicast_route_wanted() -> None:
    a = msgspec.structs.replace(att(), multicast_route=False)
    assert plan_one(a, running(a, link("10.2.1.1/24", route=False))) == []


def test_first_mac_is_recorded() -> None:
    a = att(mac=None)
    assert plan_one(a, running(a, link("10.2.1.1/24", mac=MAC))) == [RecordMac(a.ident, MAC)]


def test_netns_gone_is_dropped() -> None:
    a = att()
    (action,) = plan_one(a, Observation(ContainerState.REMOVED))
    assert isinstance(action, Drop) and a.netns_path in action.reason


def test_netns_recreated_under_the_same_name_is_reattached() -> None:
    a = att()
    moved = msgspec.structs.replace(a, netns_id="1:99")
    assert plan_one(a, running(a, None, netns_id="1:99")) == [
        Rebind(a.ident, a.netns_path, "1:99"),
        CreateInterface(moved),
    ]


def test_pid_with_another_namespace_is_gone() -> None:
    a = att("pid:4242")
    (action,) = plan_one(a, running(a, None, netns_id="1:99"))
    assert isinstance(action, Drop) and "4242" in action.reason


def test_docker_stopped_or_unknown_is_kept_untouched() -> None:
    a = att("0123456789ab" * 5 + "0123")
    assert plan_one(a, Observation(ContainerState.STOPPED)) == []
    assert plan_one(a, Observation(ContainerState.UNKNOWN)) == []
    (action,) = plan_one(a, Observation(ContainerState.REMOVED))
    assert isinstance(action, Drop) and "Docker" in action.reason


def test_docker_restarted_moves_to_its_new_namespace() -> None:
    a = att("0123456789ab" * 5 + "0123")
    obs = Observation(ContainerState.RUNNING, "/proc/77/ns/net", "1:77", None)
    moved = msgspec.structs.replace(a, netns_path="/proc/77/ns/net", netns_id="1:77")
    assert plan_one(a, obs) == [Rebind(a.ident, "/proc/77/ns/net", "1:77"), CreateInterface(moved)]


def test_plan_puts_table_changes_first_and_skips_unobserved() -> None:
    a, b, c = att("netns:a"), att("netns:b", mac=None), att("netns:c")
    table = AttachmentTable([a, b, c])
    actions = plan(
        table,
        {"netns:a": running(a, None), "netns:b": running(b, link("10.2.1.1/24", mac=MAC))},
    )
    assert actions == [RecordMac("netns:b", MAC), CreateInterface(a)]


def test_table_add_merges_addresses_and_keeps_the_mac() -> None:
    table = AttachmentTable()
    table.add(att("netns:a", "10.2.1.1/24"))
    merged = table.add(att("netns:a", "10.2.1.1/24", "10.2.2.1/24", mac=None))
    assert merged.cidrs == (IF("10.2.1.1/24"), IF("10.2.2.1/24")) and merged.mac == MAC
    removed, left = table.remove_cidrs("netns:a", [IF("10.2.1.1/24").ip])
    assert removed == (IF("10.2.1.1/24"),) and left is not None
    assert left.cidrs == (IF("10.2.2.1/24"),)
    removed, left = table.remove_cidrs("netns:a", None)
    assert removed == (IF("10.2.2.1/24"),) and left is None and len(table) == 0


def test_record_round_trip() -> None:
    a = msgspec.structs.replace(
        att("netns:a", "10.2.1.1/24", "10.32.0.1/12"), dns_name="a.weave.local."
    )
    assert Attachment.from_record(a.to_record()) == a


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@given(
    st.dictionaries(
        st.sampled_from(["ident", "spec", "netns", "netns_id", "cidrs", "mac", "x"]), json_values
    )
    | json_values
)
def test_a_malformed_record_is_a_value_error(data: object) -> None:
    try:
        att = Attachment.from_record(data)  # type: ignore[arg-type]
    except ValueError:
        return
    assert Attachment.from_record(att.to_record()) == att


# --- property: applying a plan, then observing, plans nothing ------------------------------

cidrs = st.lists(
    st.builds(lambda n, h: IF(f"10.2.{n}.{h}/24"), st.integers(0, 3), st.integers(1, 4)),
    max_size=4,
    unique=True,
)
links = st.none() | st.builds(
    LinkState,
    st.sampled_from([MAC, "02:00:00:00:00:02"]),
    cidrs.map(frozenset),
    st.booleans(),
    st.booleans(),
)
specs = st.sampled_from(["netns:c1", "pid:42", "0123456789ab" * 5 + "0123"])


@st.composite
def worlds(draw: st.DrawFn) -> tuple[Attachment, Observation]:
    spec = draw(specs)
    a = Attachment(
        ident=spec,
        spec=spec,
        netns_path="/ns/a",
        netns_id="1:10",
        cidrs=tuple(draw(cidrs.filter(bool))),
        multicast_route=draw(st.booleans()),
        mac=draw(st.none() | st.just(MAC)),
    )
    state = draw(st.sampled_from(ContainerState))
    path = draw(st.sampled_from(["/ns/a", "/ns/b"]))
    netns_id = draw(st.sampled_from(["1:10", "1:11"]))
    return a, Observation(state, path, netns_id, draw(links))


def _apply(table: AttachmentTable, obs: Observation, actions: list[Action]) -> Observation:
    """A model of the dataplane: what the kernel looks like after `actions`."""
    lnk = obs.link
    for action in actions:
        if isinstance(action, Rebind | RecordMac | Drop):
            table.change(action)
        elif isinstance(action, CreateInterface):
            a = action.attachment
            mac = a.mac or "02:00:00:00:00:03"
            lnk = LinkState(mac, frozenset(a.cidrs), a.multicast_route, True)
            if a.mac is None:  # the shell records the MAC the kernel chose
                table.change(RecordMac(a.ident, lnk.mac))
        elif isinstance(action, AddAddresses):
            assert lnk is not None
            lnk = msgspec.structs.replace(lnk, cidrs=lnk.cidrs | set(action.cidrs))
        elif isinstance(action, AddMulticastRoute):
            assert lnk is not None
            lnk = msgspec.structs.replace(lnk, multicast_route=True)
        else:
            assert lnk is not None
            lnk = msgspec.structs.replace(lnk, on_bridge=True)
    return msgspec.structs.replace(obs, link=lnk)


@given(worlds())
def test_plan_is_idempotent(world: tuple[Attachment, Observation]) -> None:
    a, obs = world
    table = AttachmentTable([a])
    first = plan(table, {a.ident: obs})
    after = _apply(table, obs, first)
    assert plan(table, {a.ident: after}) == []
    if any(isinstance(x, Drop) for x in first):
        assert table.get(a.ident) is None
    elif obs.container is ContainerState.RUNNING:
        kept = table.get(a.ident)
        assert kept is not None and after.link is not None
        assert set(kept.cidrs) <= after.link.cidrs and kept.mac == after.link.mac
