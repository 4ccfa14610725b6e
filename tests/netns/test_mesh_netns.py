"""Acceptance: routers in network namespaces form a Weave mesh and manage targets like Weave 2.8."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from weavenet.harness import Cluster, Host, established_addresses, wait_for_mesh, wait_until

MakeCluster = Callable[..., Cluster]

PASSWORD = "correct horse battery staple"
MESH_TIMEOUT = 10.0
# a line about a failed handshake / decryption, e.g. Weave's
# "connection shutting down due to error during handshake: ..." or "Unable to decrypt TCP msg"
HANDSHAKE_WORDS = re.compile(r"handshake|decrypt|authenticat", re.IGNORECASE)
FAILURE_WORDS = re.compile(r"error|fail|unable|invalid|mismatch|refus", re.IGNORECASE)


def launch_chain(cluster: Cluster, *flags: str) -> None:
    """As in the demo: h1 alone, h2 -> h1, h3 -> h2 (discovery must add h1 <-> h3)."""
    previous: Host | None = None
    for host in cluster.hosts:
        host.launch(*flags, *([previous.ip] if previous else []))
        previous = host


def targets(host: Host) -> list[str]:
    return sorted(line.strip() for line in host.status("targets").splitlines() if line.strip())


def wait_for_targets(host: Host, expected: list[str], timeout: float = 5.0) -> None:
    wait_until(
        lambda: targets(host) == sorted(expected),
        timeout,
        message=f"{host.name}: `weave status targets` != {sorted(expected)}",
        describe=lambda: targets(host),
    )


def holds_for(predicate: Callable[[], bool], duration: float, what: str) -> None:
    """Assert that `predicate` stays true for a whole observation window (polled)."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        assert predicate(), f"stopped holding: {what}"
        time.sleep(0.2)


def connected(a: Host, b: Host) -> bool:
    """True if `a` has an established connection to `b`'s underlay address."""
    return b.ip in established_addresses(a.report())


def handshake_failures(host: Host) -> list[str]:
    return [
        line
        for line in host.log().splitlines()
        if HANDSHAKE_WORDS.search(line) and FAILURE_WORDS.search(line)
    ]


def test_discovery_completes_the_mesh(cluster: MakeCluster) -> None:
    c = cluster(3)
    h1, h2, h3 = c.hosts
    launch_chain(c)
    wait_for_mesh(c.hosts, peers=3, established=2, timeout=MESH_TIMEOUT)
    assert connected(h1, h3) and connected(h3, h1), "discovery did not connect h1 and h3"
    # discovered peers are connections, not targets
    assert (targets(h1), targets(h2), targets(h3)) == ([], [h1.ip], [h2.ip])


def test_status_peers_agrees_with_report_template(cluster: MakeCluster) -> None:
    c = cluster(3)
    launch_chain(c)
    wait_for_mesh(c.hosts, timeout=MESH_TIMEOUT)
    for host in c.hosts:
        out = host.status("peers")
        peer_lines = [line for line in out.splitlines() if line and not line[0].isspace()]
        count = host.weave("report", "-f", "{{len .Router.Peers}}").stdout.strip()
        assert count.isdigit(), f"report -f gave {count!r}"
        assert len(peer_lines) == int(count) == 3, out
        nicks = sorted(re.sub(r"^.*\((.*)\)$", r"\1", line.strip()) for line in peer_lines)
        assert nicks == ["h1", "h2", "h3"], out


def test_password_encrypts_every_connection(cluster: MakeCluster) -> None:
    c = cluster(3)
    launch_chain(c, "--password", PASSWORD)
    wait_for_mesh(c.hosts, timeout=MESH_TIMEOUT)
    for host in c.hosts:
        lines = [line for line in host.status("connections").splitlines() if line.strip()]
        assert len(lines) == 2, lines
        for line in lines:
            words = line.split()
            assert "established" in words and "encrypted" in words, line
        assert host.report()["Router"]["Encryption"] is True
        assert re.search(r"^\s*Encryption: enabled$", host.status(), re.MULTILINE)


def test_wrong_password_is_refused(cluster: MakeCluster) -> None:
    c = cluster(3)
    h1, h2, h3 = c.hosts
    h1.launch("--password", PASSWORD)
    h2.launch("--password", PASSWORD, h1.ip)
    wait_for_mesh([h1, h2], timeout=MESH_TIMEOUT)
    h3.launch("--password", "not the password", h1.ip, h2.ip)
    wait_until(
        lambda: handshake_failures(h3),
        MESH_TIMEOUT,
        message="h3 (wrong password) logged no failed handshake/decrypt line",
        describe=lambda: "\n" + "\n".join(h3.log().splitlines()[-20:]),
    )
    assert established_addresses(h3.report()) == []
    # whichever side reads first, the wrong key must show up as a decryption failure
    wait_until(
        lambda: [line for h in c.hosts for line in handshake_failures(h) if "decrypt" in line],
        MESH_TIMEOUT,
        message="no host logged a decryption failure",
    )

    def others_unaffected() -> bool:
        r1, r2 = h1.report(), h2.report()
        return (
            established_addresses(r1) == [h2.ip]
            and established_addresses(r2) == [h1.ip]
            and not established_addresses(h3.report())
        )

    holds_for(others_unaffected, 2.0, "h1 <-> h2 only, h3 without established connections")


def test_connect_replace_and_forget_edit_targets(cluster: MakeCluster) -> None:
    c = cluster(3)
    h1, h2, h3 = c.hosts
    h2.launch()
    h3.launch()
    h1.launch(h2.ip)
    wait_for_targets(h1, [h2.ip])
    wait_for_mesh([h1, h2], timeout=MESH_TIMEOUT)

    h1.weave("connect", "--replace", h3.ip)
    wait_for_targets(h1, [h3.ip])
    wait_for_mesh(c.hosts, timeout=MESH_TIMEOUT)  # h1 -> h3 by target, h2 <-> h3 by discovery

    h1.weave("connect", h2.ip)
    wait_for_targets(h1, [h2.ip, h3.ip])

    h1.weave("forget", h3.ip)
    wait_for_targets(h1, [h2.ip])
    # forget does not tear down the existing connection
    holds_for(lambda: connected(h1, h3), 1.0, "h1 still connected to forgotten target h3")


def test_stop_then_launch_resume_restores_targets(cluster: MakeCluster) -> None:
    c = cluster(3)
    h1, h2, h3 = c.hosts
    launch_chain(c)
    wait_for_mesh(c.hosts, timeout=MESH_TIMEOUT)
    h3.weave("connect", h1.ip)  # runtime change: must be persisted too
    wait_for_targets(h3, [h1.ip, h2.ip])
    before = targets(h3)

    h3.stop()
    assert h3.router_pid() is None, "weaver still running after `weave stop`"
    assert h3.weave("status", check=False).returncode != 0

    refused = h3.launch("--resume", h1.ip, check=False)
    assert refused.returncode != 0, "--resume with a peer list must be refused"
    assert "resume" in (refused.stdout + refused.stderr).lower()

    h3.launch("--resume")
    assert targets(h3) == before
    wait_for_mesh(c.hosts, timeout=MESH_TIMEOUT)


def test_status_subcommands_on_a_lone_router(cluster: MakeCluster) -> None:
    h1 = cluster(1).hosts[0]
    h1.launch()
    assert h1.status("targets").strip() == ""
    assert h1.status("connections").strip() == ""
    assert h1.status("peers").splitlines()[0].endswith("(h1)")
    assert h1.weave("report", "-f", "{{len .Router.Peers}}").stdout.strip() == "1"
