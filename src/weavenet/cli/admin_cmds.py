"""``weave prime|rmpeer|reset``: IPAM administration and wiping a host clean."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import click

from weavenet.cli import launcher
from weavenet.cli.client import ClientError, call, http_addr, router_answers
from weavenet.cli.dataplane_cmds import BRIDGE, reported, timeout_option
from weavenet.cli.ipam_client import wait_for
from weavenet.core.errors import WeaveError

IPAM_DISABLED = "IP address allocation is disabled on this router (--ipalloc-range '')"
# What a router leaves in its state directory; `weave reset` removes these and nothing else.
STATE_FILES = (
    "weavedata.db",
    "weavedata.db-lock",
    launcher.PID_FILE,
    launcher.LOG_FILE,
    "attachments.json",  # written by releases before the router owned attachments
    "firewall.json",
    "dataplane.lock",
)
# Directories of such files: the proxy's wait program (weavenet.proxy.weavewait).
STATE_DIRS = {"weavewait": ("busybox", "w")}


@click.command()
@timeout_option
def prime(timeout: float | None) -> None:
    """Wait until the IP allocation ring is ready (forces consensus): weave prime."""
    with reported("prime"):
        code, body = wait_for("GET", "/ring", "prime", timeout, sys.stderr)
        if code == 404:
            raise WeaveError(IPAM_DISABLED)
        if not 200 <= code < 300:
            raise WeaveError(body.strip() or f"weave router answered HTTP {code}")


@click.command()
@click.argument("peers", nargs=-1, required=True, metavar="PEER...")
def rmpeer(peers: Sequence[str]) -> None:
    """Take over the IP ranges of dead peers (name or nickname): weave rmpeer PEER..."""
    with reported("rmpeer"):
        for peer in peers:
            code, body = call("DELETE", f"/peer/{quote(peer, safe='')}")
            if code == 404:
                raise WeaveError(IPAM_DISABLED)
            if not 200 <= code < 300:
                raise WeaveError(body.strip() or f"weave router answered HTTP {code}")
            click.echo(body, nl=not body.endswith("\n"))


def _hand_over_and_stop(state_dir: str, force: bool) -> None:
    """DELETE /peer (IPAM gives our ranges to another peer), then stop the router."""
    pid = launcher.read_pid(state_dir)
    if router_answers() is not None:
        with contextlib.suppress(ClientError):
            call("DELETE", "/peer", timeout=30.0)  # 404: no IPAM, nothing to hand over
    elif pid is not None and not force:
        raise WeaveError(
            f"the weave router (pid {pid}) is running but does not answer on {http_addr()};"
            " use 'weave reset --force' to reset anyway"
        )
    launcher.stop(state_dir)


def remove_state(state_dir: Path) -> list[Path]:
    """Delete the router's files from `state_dir`, then the directory if that empties it."""
    removed = []
    names = [f"{d}/{f}" for d, files in STATE_DIRS.items() for f in files]
    for name in [*STATE_FILES, *names, *STATE_DIRS]:
        path = state_dir / name
        if path.is_dir():
            with contextlib.suppress(OSError):
                path.rmdir()
                removed.append(path)
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    with contextlib.suppress(OSError):  # not empty: files that are not ours stay
        state_dir.rmdir()
        removed.append(state_dir)
    return removed


@click.command()
@click.option("--force", is_flag=True, help="Reset even if the router does not answer.")
def reset(force: bool) -> None:
    """Hand over IP ranges, stop the router, remove the bridge, its ports, the firewall
    table and the state directory: weave reset [--force]."""
    state_dir = os.environ.get("WEAVE_STATE_DIR") or launcher.DEFAULT_STATE_DIR
    with reported("reset"):
        _hand_over_and_stop(state_dir, force)
        from weavenet.dataplane import reset_host
        from weavenet.io.reconcile import tap_name

        reset_host(BRIDGE, tap_name(BRIDGE))
        remove_state(Path(state_dir))


COMMANDS: tuple[click.Command, ...] = (prime, rmpeer, reset)
