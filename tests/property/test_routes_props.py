"""Routes and discovery over a Peers table, both relying on its being closed (each remote a
reachable entry lists has an entry of its own), whatever the table went through: merges,
our own connections made and dropped, collections with or without a grace.

- The route search that stops after as many names as the table has entries
  (``Routes.compute``) finds exactly the routes of the search that counts every name.
- ``Routes.reaches`` (a search that stops at its peer) answers as the data-plane table.
- ``discovery_candidates`` finds every announced connection to a peer of the table we
  are not connected to, as walking every entry's every connection does."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.property.test_topology_props import POOL, US, Key, encode, fresh, update_keys
from weavenet.core.mesh.connection_maker import discovery_candidates
from weavenet.core.mesh.peers import Peers
from weavenet.core.mesh.routes import Routes
from weavenet.core.peername import UNKNOWN_PEER_NAME

Step = tuple[int, bool, float | None]  # connect to / drop this remote, collect (grace)?
steps = st.lists(
    st.tuples(st.sampled_from(POOL), st.booleans(), st.sampled_from((None, 0.0, 5.0))),
    max_size=5,
)


def churn(peers: Peers, step: Step, now: float) -> None:
    remote, drop, grace = step
    if drop:
        if remote in peers.ourself.connections:
            peers.delete_local_connection(remote)
    else:
        peers.add_local_connection(remote, f"10.1.0.{remote}:6783", True, remote % 2 == 0)
    if grace is not None:
        peers.garbage_collect(now, grace)


def assert_closed_and_equal(peers: Peers) -> None:
    asked = Routes.compute(peers)  # asked one question each, its table never computed
    reached = {name for name in (US, *POOL, UNKNOWN_PEER_NAME) if asked.reaches(name)}
    assert "unicast" not in asked.__dict__
    computed = Routes.compute(peers)
    assert reached == {n for n in (US, *POOL, UNKNOWN_PEER_NAME) if computed.lookup(n) is not None}
    assert all(computed.reaches(n) == (n in reached) for n in (US, *POOL))  # from the table
    counted = Routes(US, peers.adjacency())
    assert computed.unicast_all == counted.unicast_all
    assert computed.unicast == counted.unicast
    for name in computed.unicast_all:  # reachable: each remote it lists has an entry
        peer = peers.get(name)
        assert peer is not None and all(remote in peers for remote in peer.connections)


@settings(deadline=None, max_examples=150)
@given(st.integers(0, 2**16), update_keys, steps, st.randoms(use_true_random=False))
def test_routes_of_a_closed_table_match_the_counted_search(
    seed: int, groups: list[list[Key]], churn_steps: list[Step], rnd: random.Random
) -> None:
    peers = fresh()
    updates = [encode(seed, group) for group in groups]
    for i, update in enumerate(updates):
        peers.apply_update(update)
        for step in churn_steps[i :: len(updates)]:
            churn(peers, step, now=float(i * 3))
        assert_closed_and_equal(peers)
    peers.garbage_collect(1000.0, rnd.choice((0.0, 5.0)))
    assert_closed_and_equal(peers)


def test_an_unclosed_adjacency_is_counted() -> None:
    """A plain adjacency whose remote has no key of its own: the counted search routes it."""
    adjacency = {US: {1: False}, 1: {US: False, 2: False}}
    assert Routes(US, adjacency).unicast_all == {US: UNKNOWN_PEER_NAME, 1: 1, 2: 1}
    # why Routes.compute needs a closed table: taken as closed, this one stops early
    unclosed = Routes(US, adjacency, closed=True).unicast_all
    assert unclosed == {US: UNKNOWN_PEER_NAME, 1: 1}


def every_announced(peers: Peers, connected: set[int]) -> set[tuple[int, str, bool]]:
    """The definition: walk every entry's every connection, to a peer in the table (a
    closed table has each of them; the filter restates that, for the oracle's sake)."""
    return {
        (remote, summary.remote_tcp_addr, summary.outbound)
        for peer in peers
        if peer.name != US
        for remote, summary in peer.connections.items()
        if remote != US and remote not in connected and remote in peers
    }


@settings(deadline=None, max_examples=150)
@given(st.integers(0, 2**16), update_keys, steps, st.sets(st.sampled_from(POOL)))
def test_discovery_candidates_are_every_announced_connection_to_an_unconnected_peer(
    seed: int, groups: list[list[Key]], churn_steps: list[Step], connected: set[int]
) -> None:
    peers = fresh()
    for i, group in enumerate(groups):
        peers.apply_update(encode(seed, group))
        for step in churn_steps[i :: len(groups)]:
            churn(peers, step, now=float(i * 3))
        found = discovery_candidates(peers.unordered(), peers.names(), US, connected)
        assert found == every_announced(peers, connected)
