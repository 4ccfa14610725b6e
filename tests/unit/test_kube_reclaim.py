"""The Kubernetes agent's pure decisions: peers, reclaim candidates, the Lease, the IPAM seed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from weavenet.core.kube.reclaim import (
    LeaseAction,
    LeaseView,
    NodeView,
    ipam_init,
    join_names,
    lease_action,
    parse_names,
    peer_addresses,
    peer_changes,
    reclaim_candidates,
)

PEERS = st.sampled_from([f"0a:00:00:00:00:0{i}" for i in range(8)])


def test_peer_addresses_are_the_other_nodes_internal_ips() -> None:
    nodes = [NodeView("a", "10.0.0.1", None), NodeView("b", "10.0.0.2", "p"),
             NodeView("c", None, None)]  # fmt: skip
    assert peer_addresses(nodes, "a") == {"10.0.0.2"}


def test_peer_changes_connect_new_and_forget_gone() -> None:
    changes = peer_changes({"10.0.0.1", "10.0.0.2"}, {"10.0.0.2", "10.0.0.3"})
    assert changes.connect == {"10.0.0.3"}
    assert changes.forget == {"10.0.0.1"}


def test_candidate_is_an_unreachable_owner_no_node_runs() -> None:
    owners = {"me": True, "live": True, "dead": False, "restarting": False}
    found = reclaim_candidates(owners, live_peers={"me", "live", "restarting"}, reclaimed=[],
                               me="me")  # fmt: skip
    assert found == ["dead"]


def test_reachable_owner_is_never_reclaimed_even_without_a_node() -> None:
    assert reclaim_candidates({"fresh": True}, live_peers=[], reclaimed=[], me="me") == []


def test_already_reclaimed_peer_is_not_reclaimed_again() -> None:
    assert reclaim_candidates({"dead": False}, live_peers=[], reclaimed=["dead"], me="me") == []


@given(st.dictionaries(PEERS, st.booleans()), st.sets(PEERS), st.sets(PEERS), PEERS)
def test_candidates_never_include_live_reachable_or_self(
    owners: dict[str, bool], live: set[str], reclaimed: set[str], me: str
) -> None:
    found = reclaim_candidates(owners, live, reclaimed, me)
    assert found == sorted(set(found))
    for peer in found:
        assert peer != me and peer not in live and peer not in reclaimed
        assert owners[peer] is False
    expected = {p for p, r in owners.items() if not r} - live - reclaimed - {me}
    assert set(found) == expected


def test_lease_absent_is_created() -> None:
    assert lease_action(None, "n1", 100.0, {"n1"}) is LeaseAction.CREATE


def test_own_lease_is_renewed() -> None:
    assert lease_action(LeaseView("n1", 99.0, 15), "n1", 100.0, {"n1"}) is LeaseAction.RENEW


def test_lease_of_a_live_node_within_its_duration_is_waited_for() -> None:
    lease = LeaseView("n2", 90.0, 15)
    assert lease_action(lease, "n1", 100.0, {"n1", "n2"}) is LeaseAction.WAIT


def test_expired_lease_or_deleted_holder_is_acquired() -> None:
    assert lease_action(LeaseView("n2", 80.0, 15), "n1", 100.0, {"n1", "n2"}) is (
        LeaseAction.ACQUIRE)  # fmt: skip
    assert lease_action(LeaseView("n3", 99.0, 15), "n1", 100.0, {"n1", "n2"}) is (
        LeaseAction.ACQUIRE)  # fmt: skip
    assert lease_action(LeaseView(None, None, 15), "n1", 100.0, {"n1"}) is LeaseAction.ACQUIRE


@given(st.lists(PEERS, min_size=1, max_size=6))
def test_every_router_gets_the_first_recorded_seed(joiners: list[str]) -> None:
    """Whatever the order nodes join in, all use the seed the first one recorded."""
    recorded: str | None = None
    flags = []
    for peer in joiners:
        init = ipam_init(recorded, peer)
        recorded = recorded or init.seed
        flags.append(init.flag())
    assert flags == [f"seed={joiners[0]}"] * len(joiners)


def test_names_round_trip() -> None:
    assert parse_names(join_names(["b", "a", "b"])) == ["a", "b"]
    assert parse_names(None) == [] and parse_names(" , a ,") == ["a"]
