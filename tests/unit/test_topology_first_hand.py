"""Which topology entries a periodic round sends a neighbour: those it may not have had
from their owners (TopologyGossipData.lacking_first_hand)."""

from __future__ import annotations

from tests.unit.test_peers import US, A, B, C, D, make_peer, new_table
from weavenet.core.mesh.peer import encode_peers
from weavenet.core.mesh.peers import Peers
from weavenet.core.mesh.topology_gossip import TopologyGossipData

TO_ALL = {US, A, B}  # we, A and B send each version of our entry to every connection


def _table() -> Peers:
    """We are connected to A and B (published); A-B, B-C; C is a Go peer."""
    peers = new_table()
    peers.apply_update(
        encode_peers(
            [
                make_peer(A, conns={US: True, B: True}),
                make_peer(B, conns={US: True, A: True, C: True}),
                make_peer(C, conns={B: True}),
            ]
        )
    )
    peers.add_local_connection(A, "10.0.0.1:6783", True, True)
    peers.add_local_connection(B, "10.0.0.2:6783", True, True)
    peers.publish()
    return peers


def _lacking(peers: Peers, receiver: int, to_all: set[int] = TO_ALL) -> set[int]:
    part = TopologyGossipData(peers, peers.names()).lacking_first_hand(receiver, to_all)
    return set() if part is None else part.names


def test_a_neighbour_listed_by_an_owner_that_sends_to_all_has_its_entry() -> None:
    peers = _table()
    # B has its own, ours and A's (both list B); C's owner is a Go peer: it may not
    assert _lacking(peers, B) == {C}
    # A is listed by us and by B, but not by C
    assert _lacking(peers, A) == {C}


def test_an_owner_that_does_not_say_so_is_never_trusted() -> None:
    peers = _table()
    assert _lacking(peers, B, to_all={US}) == {A, C}  # A's and B's features unknown


def test_a_receiver_listed_by_nobody_gets_the_whole_table() -> None:
    peers = _table()
    assert _lacking(peers, D) == {US, A, B, C}


def test_our_entry_counts_as_sent_only_once_published() -> None:
    peers = _table()
    peers.add_local_connection(D, "10.0.0.4:6783", True, False)  # not yet published
    assert US in _lacking(peers, D)
    peers.publish()
    assert US not in _lacking(peers, D)


def test_nothing_lacking_gives_none() -> None:
    peers = _table()
    data = TopologyGossipData(peers, {US, A})
    assert data.lacking_first_hand(B, TO_ALL) is None
