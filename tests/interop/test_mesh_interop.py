"""A Go weaver 2.8.1 and ours form one mesh: both directions, plain and encrypted, and a
3-host mixed mesh completed by discovery. Every router's /report peer table is identical."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.interop.helpers import our_connections, wait_mesh, wait_tables_agree
from weavenet.harness import Host
from weavenet.harness.goweaver import GoWeaver, InteropCluster

PASSWORDS = pytest.mark.parametrize(
    "password", [None, "s3cret-interop"], ids=["plain", "encrypted"]
)


def _password_args(password: str | None) -> list[str]:
    return ["--password", password] if password else []


@PASSWORDS
@pytest.mark.parametrize("dialer", ["go-dials-ours", "ours-dials-go"])
def test_go_and_ours_mesh(
    interop: Callable[..., InteropCluster],
    go: Callable[..., GoWeaver],
    dialer: str,
    password: str | None,
) -> None:
    c = interop(2)
    ours = c.hosts[0]
    if dialer == "go-dials-ours":
        ours.launch(*_password_args(password))
        gow = go(c, 1, password=password, peers=[ours.ip])
    else:
        gow = go(c, 1, password=password)
        ours.launch(*_password_args(password), c.hosts[1].ip)
    wait_mesh([ours, gow], peers=2, est=[1, 1])
    table = wait_tables_agree([ours, gow])

    assert {p["NickName"] for p in table} == {"h1", gow.nickname}
    go_side = next(p for p in table if p["Name"] == gow.name)
    (link,) = go_side["Connections"]
    assert link["NickName"] == "h1" and link["Established"]
    assert link["Outbound"] is (dialer == "go-dials-ours")
    go_report = gow.report()["Router"]
    assert go_report["Encryption"] is (password is not None)
    (conn,) = go_report["Connections"]
    assert ("encrypted" in conn["Info"]) is (password is not None), conn
    assert ("encrypted" in our_connections(ours)) is (password is not None)


@pytest.mark.parametrize("layout", ["go-ours-go", "ours-go-ours"])
def test_three_host_mixed_mesh_completes_by_discovery(
    interop: Callable[..., InteropCluster], go: Callable[..., GoWeaver], layout: str
) -> None:
    """h2 knows h1, h3 knows only h2: h1 and h3 find each other through gossip."""
    c = interop(3)
    h1, h2, h3 = c.hosts
    if layout == "go-ours-go":
        g1 = go(c, 0)
        h2.launch(h1.ip)
        g3 = go(c, 2, peers=[h2.ip])
        routers: list[Host | GoWeaver] = [g1, h2, g3]
    else:
        h1.launch()
        g2 = go(c, 1, peers=[h1.ip])
        h3.launch(h2.ip)
        routers = [h1, g2, h3]
    # Two Go weavers that find each other at once both dial; each end may drop the
    # connection the other keeps ("Multiple connections"), then both back off 1-3 s,
    # x1.5, and can collide again (seen once in CI, unreconnected after 40 s). Ours
    # avoid this (the higher name waits); the Go pair gets longer.
    timeout = 90.0 if layout == "go-ours-go" else 40.0
    wait_mesh(routers, peers=3, est=[2, 2, 2], timeout=timeout)
    table = wait_tables_agree(routers)
    assert len(table) == 3
    for peer in table:
        assert len(peer["Connections"]) == 2 and all(x["Established"] for x in peer["Connections"])
