"""While IPAM waits, the report names the peers the mesh is still trying to reach."""

from __future__ import annotations

from weavenet.api.ipam_report import with_unconnected_targets

ROWS: list[dict[str, object]] = [
    {"Address": "10.0.0.2:6783", "Outbound": True, "State": "connecting", "Info": ""},
    {
        "Address": "10.0.0.3:6783",
        "Outbound": True,
        "State": "failed",
        "Info": "dial tcp4 10.0.0.3:6783: connect: connection refused, "
        "retry: 2026-12-01 10:00:00.000 +0000 UTC",
    },
]


def test_waiting_section_names_unconnected_targets() -> None:
    section = with_unconnected_targets({"Awaiting": "consensus: 1 of the 2 peers"}, ROWS)
    assert section["Awaiting"] == (
        "consensus: 1 of the 2 peers; peers not connected yet: 10.0.0.2:6783 (connecting), "
        "10.0.0.3:6783 (failed: connection refused)"
    )


def test_nothing_is_added_when_nothing_is_awaited_or_every_target_is_connected() -> None:
    assert with_unconnected_targets({"Awaiting": ""}, ROWS) == {"Awaiting": ""}
    assert with_unconnected_targets({"Awaiting": "x"}, []) == {"Awaiting": "x"}
