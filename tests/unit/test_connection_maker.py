"""Targets, discovery and backoff of the connection maker (mesh connection_maker.go)."""

from __future__ import annotations

import collections
import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from weavenet.core.mesh.connection_maker import (
    DISCOVERY_DEFER,
    HANDSHAKE_WAIT,
    INITIAL_INTERVAL,
    MAX_INTERVAL,
    REFUSED_INTERVAL,
    RESET_AFTER,
    ConnectionMaker,
    OurConnection,
)

US = 5


def _maker(discovery: bool = True) -> ConnectionMaker:
    return ConnectionMaker(6783, discovery, random.Random(1))


def test_bad_addresses_are_refused_one_error_each() -> None:
    maker = _maker()
    assert maker.connect(["10.0.0.1", "10.0.0.2:99999", "bad host!"], False) != []
    assert maker.direct_peers() == []
    assert maker.connect(["10.0.0.1", "10.0.0.2:7000"], False) == []
    assert maker.direct_peers() == ["10.0.0.1", "10.0.0.2:7000"]


def test_replace_and_forget_edit_the_targets() -> None:
    maker = _maker()
    maker.connect(["10.0.0.1", "10.0.0.2"], False)
    maker.connect(["10.0.0.3"], True)
    assert maker.direct_peers() == ["10.0.0.3"]
    maker.forget(["10.0.0.3"])
    assert maker.direct_peers() == []


def test_direct_targets_are_dialled_at_once_and_not_twice() -> None:
    maker = _maker()
    maker.connect(["10.0.0.1"], False)
    assert maker.plan(0.0, [], [], US) == ["10.0.0.1:6783"]
    assert maker.plan(0.1, [], [], US) == []  # already attempting


def test_repeated_failures_back_off_with_jitter_up_to_the_cap() -> None:
    maker = _maker()
    maker.connect(["10.0.0.1"], False)
    now, dials = 1000.0, []  # a monotonic clock is far from zero
    for _ in range(40):
        due = maker.plan(now, [], [], US)
        if due:
            dials.append(now)
            maker.connection_terminated(due[0], "Unable to decrypt TCP msg", now)
        now = max(now + 0.1, min(maker.next_wakeup(), now + 1000))
    gaps = [b - a for a, b in itertools.pairwise(dials)]
    assert sum(1 for t in dials if t < dials[0] + 1.0) <= 2  # one quick retry, as Go
    assert all(gap >= INITIAL_INTERVAL / 2 - 0.2 for gap in gaps[1:])  # then backoff
    assert all(gap <= MAX_INTERVAL * 1.5 + 0.2 for gap in gaps)
    assert gaps[-1] > gaps[1]  # it grew


def test_discovery_targets_peers_of_peers_and_defers_the_higher_name() -> None:
    maker = _maker()
    ours = [OurConnection(9, "10.0.0.9:6783", True)]
    known = [(3, "10.0.0.3:6783", True), (7, "10.0.0.7:41234", False), (US, "10.0.0.5:1", False)]
    # we (5) are the lower end towards 7: dial now, at the mesh port, not the ephemeral one
    assert maker.plan(0.0, ours, known, US) == ["10.0.0.7:6783"]
    # towards 3 we are the higher end: wait DISCOVERY_DEFER..2*DISCOVERY_DEFER first
    assert maker.plan(DISCOVERY_DEFER - 0.1, ours, known, US) == []
    assert maker.plan(DISCOVERY_DEFER * 2 + 0.1, ours, known, US) == ["10.0.0.3:6783"]


def test_a_host_whose_inbound_connection_is_in_its_handshake_is_not_dialled_meanwhile() -> None:
    maker = _maker()
    ours = [OurConnection(9, "10.0.0.9:6783", True)]
    known = [(7, "10.0.0.7:41234", False), (8, "10.0.0.8:6783", True)]
    calling = ["10.0.0.7:50123"]  # 7 is dialling us: its handshake is not done yet
    assert maker.plan(0.0, ours, known, US, calling) == ["10.0.0.8:6783"]
    assert maker.next_wakeup() == HANDSHAKE_WAIT  # looks again then
    assert maker.plan(HANDSHAKE_WAIT, ours, known, US, calling) == []
    # the handshake failed: 7 is dialled at once
    assert maker.plan(2 * HANDSHAKE_WAIT, ours, known, US) == ["10.0.0.7:6783"]


def test_a_handshaking_host_defers_only_dials_to_the_mesh_port() -> None:
    maker = _maker()
    maker.connect(["10.0.0.7:7000", "10.0.0.7"], False)  # another router on that host
    due = maker.plan(0.0, [], [], US, ["10.0.0.7:50123"])
    assert due == ["10.0.0.7:7000"]
    ours = [OurConnection(7, "10.0.0.7:50123", False)]  # it completed: nothing left to dial
    assert maker.plan(HANDSHAKE_WAIT, ours, [], US) == []


def test_no_discovery_means_only_direct_targets() -> None:
    maker = _maker(discovery=False)
    assert maker.plan(0.0, [], [(3, "10.0.0.3:6783", True)], US) == []


def _connected_direct_target(now: float) -> tuple[ConnectionMaker, str]:
    maker = _maker()
    maker.connect(["10.0.0.1"], False)
    (address,) = maker.plan(now, [], [], US)
    maker.connection_added(address, outbound=True)
    return maker, address


def test_a_connection_that_lived_briefly_is_redialled_after_a_backoff_as_go() -> None:
    # mesh's addTarget starts a target with nextTryNow (tryAfter = its creation), so a
    # connection that ends within RESET_AFTER of it backs off rather than redialling at
    # once: the peer that just went away is usually not back yet (a killed router's
    # listener still completes the handshake of a dial and resets it)
    maker, address = _connected_direct_target(1000.0)
    maker.connection_terminated(address, "EOF", 1012.0)
    assert maker.plan(1012.0, [], [], US) == []
    assert 1012.0 + INITIAL_INTERVAL / 2 <= maker.next_wakeup() < 1012.0 + 1.5 * INITIAL_INTERVAL
    assert maker.plan(maker.next_wakeup(), [], [], US) == [address]


def test_a_connection_that_lived_past_the_reset_time_is_redialled_at_once() -> None:
    maker, address = _connected_direct_target(1000.0)
    maker.connection_terminated(address, "EOF", 1000.0 + RESET_AFTER + 1)
    assert maker.plan(1000.0 + RESET_AFTER + 1, [], [], US) == [address]


def _dial_times(refused: bool, until: float) -> list[float]:
    """When a direct target that every dial fails for is dialled, from t=1000."""
    maker = _maker()
    maker.connect(["10.0.0.1"], False)
    now, dials = 1000.0, []
    while now < 1000.0 + until:
        for address in maker.plan(now, [], [], US):
            dials.append(now)
            maker.dial_failed(address, "connect: connection refused", now, refused=refused)
        now = max(now + 0.01, maker.next_wakeup())
    return dials


def test_a_refused_dial_is_retried_sooner_until_the_usual_backoff_catches_up() -> None:
    refused = _dial_times(refused=True, until=120)
    other = _dial_times(refused=False, until=120)
    first = [b - a for a, b in itertools.pairwise(refused)][:3]
    assert all(REFUSED_INTERVAL / 2 - 0.02 <= gap < INITIAL_INTERVAL for gap in first)
    assert all(b - a >= INITIAL_INTERVAL / 2 for a, b in itertools.pairwise(other))
    assert len([t for t in refused if t < 1005]) > len([t for t in other if t < 1005])
    # then the usual backoff: a host that keeps refusing is not dialled much more often
    late = [b - a for a, b in itertools.pairwise(refused)][-3:]
    assert all(gap >= INITIAL_INTERVAL for gap in late)
    assert len(refused) <= len(other) + 5


def test_a_long_lived_connection_restarts_the_refused_backoff() -> None:
    maker, address = _connected_direct_target(1000.0)
    target = maker.targets[address]
    target.refused_interval = INITIAL_INTERVAL  # used up by earlier refusals
    maker.connection_terminated(address, "EOF", 1000.0 + RESET_AFTER + 1)
    assert target.refused_interval == REFUSED_INTERVAL


@settings(max_examples=100)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["plan", "refused", "failed", "added", "ended"]),
            st.integers(0, 3),
            st.floats(0, 5, allow_nan=False),
        ),
        max_size=40,
    )
)
def test_state_counts_count_the_status_rows_by_state(
    ops: list[tuple[str, int, float]],
) -> None:
    maker = _maker()
    addresses = [f"10.0.0.{i + 1}:6783" for i in range(4)]
    maker.connect([a.split(":")[0] for a in addresses[:2]], False)
    known = [(7 + i, a, True) for i, a in enumerate(addresses[2:])]
    ours = [OurConnection(9, "10.0.0.9:6783", True)]
    now = 0.0
    for op, index, step in ops:
        now += step
        address = addresses[index]
        if op == "plan":
            maker.plan(now, ours, known, US)
        elif op in ("refused", "failed"):
            maker.dial_failed(address, "connect: connection refused", now, op == "refused")
        elif op == "added":
            maker.connection_added(address, True)
        else:
            maker.connection_terminated(address, "EOF", now)
        rows = collections.Counter(str(row["State"]) for row in maker.status(0.0))
        assert maker.state_counts() == dict(rows)
