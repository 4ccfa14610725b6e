"""``weave attach|detach|ps|expose|hide``: the CLI side of the dataplane.

The router owns attachments and exposed addresses (it persists them in LMDB and keeps the
kernel matching them), so these commands resolve the container here, get addresses from
IPAM (``ipam_client``), and ask the router (``POST /attach``, ``/detach``, ``/expose``).
``weave ps`` reads the persisted attachments straight from the store (read-only), so it
works while the router is down. ``weavenet.dataplane`` (pyroute2) is imported lazily so
the other ``weave`` commands do not pay for it at start-up.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

import click

from weavenet.cli import ipam_client as ipam
from weavenet.cli.client import ClientError, call
from weavenet.cli.ipam_client import ArgumentError, IpamWaitTimeout
from weavenet.cli.launcher import DEFAULT_STATE_DIR
from weavenet.core.attachments import EXPOSE_IDENT
from weavenet.core.errors import WeaveError

if TYPE_CHECKING:
    from weavenet.core.attachments import Attachment
    from weavenet.dataplane import ContainerRef

BRIDGE = "weave"
EXAMPLE = "10.2.1.254/24"  # for expose/hide
NO_BRIDGE = "the weave router has no bridge (launched with --no-bridge?): relaunch it without"
_DOCKER_ID = set("0123456789abcdef")

Cidr = ipaddress.IPv4Interface


def _dp() -> ModuleType:
    import weavenet.dataplane as dp

    return dp


def fail(command: str, message: str) -> NoReturn:
    """Abort with ``weave: COMMAND: MESSAGE`` (one line) and exit status 1."""
    raise click.ClickException(f"{command}: {' '.join(message.split())}")


@contextlib.contextmanager
def reported(command: str) -> Iterator[None]:
    """Turn our own errors (bad arguments, kernel refusals, router trouble) into one line."""
    try:
        yield
    except IpamWaitTimeout as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    except (WeaveError, ClientError) as exc:
        fail(command, str(exc))
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        fail(command, f"{where}{exc.strerror or exc}")


def split_container_args(args: Sequence[str]) -> tuple[list[ipam.AddressArg], str]:
    """``[ADDR...] CONTAINER`` -> (addresses, container spec)."""
    if not args:
        raise ArgumentError("missing container: give netns:NAME, pid:PID or a Docker container")
    *addr_args, spec = args
    if ipam.is_address_arg(spec):
        raise ArgumentError(f"missing container after {spec}: addresses first, then one container")
    return ipam.parse_addresses(addr_args), spec


def show_ips(cidrs: Sequence[Cidr]) -> str:
    """Addresses without their prefix, space-separated, as Weave prints them."""
    return " ".join(str(c.ip) for c in cidrs)


def _router(method: str, path: str, form: Any = None) -> tuple[int, str]:
    """A router call that must succeed (404: the router has no bridge)."""
    code, body = call(method, path, form=form, timeout=60.0)
    if code == 404:
        raise WeaveError(NO_BRIDGE)
    if not 200 <= code < 300:
        raise WeaveError(body.strip() or f"weave router answered HTTP {code}")
    return code, body


def _is_docker(ident: str) -> bool:
    return len(ident) == 64 and set(ident) <= _DOCKER_ID


timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Give up if no address is allocated within SECONDS (default: wait).",
)


@click.command()
@click.option("--no-multicast-route", is_flag=True, help="No 224.0.0.0/4 route in the container.")
@click.option("--without-dns", is_flag=True, help="Do not register the container in DNS.")
@timeout_option
@click.argument("args", nargs=-1, metavar="[ADDR...] CONTAINER")
def attach(
    no_multicast_route: bool, without_dns: bool, timeout: float | None, args: Sequence[str]
) -> None:
    """Connect a container: weave attach [ADDR...] CONTAINER (no ADDR: IPAM allocates).

    ADDR is [ip:]CIDR, net:CIDR or net:default; CONTAINER is netns:NAME, netns:/path,
    pid:PID or a Docker container id/name. Prints the IPs.
    """
    with reported("attach"):
        addrs, spec = split_container_args(args)
        ref = _dp().resolve_container(spec)
        check_alive = _is_docker(ref.ident)
        cidrs = ipam.allocate(ref.ident, addrs, "attach", timeout, sys.stderr, check_alive)
        form = [("ident", ref.ident), ("spec", spec), ("netns", ref.netns_path)]
        form += [("cidr", str(c)) for c in cidrs]
        form.append(("multicast", "false" if no_multicast_route else "true"))
        try:
            _router("POST", "/attach", form)
        except WeaveError:
            _forget_allocated(ref.ident, addrs, cidrs)
            raise
    click.echo(show_ips(cidrs))


def _forget_allocated(ident: str, addrs: Sequence[ipam.AddressArg], cidrs: list[Cidr]) -> None:
    """The container was not wired: give back what IPAM allocated for it just now."""
    args: Sequence[ipam.AddressArg | None] = addrs or [None]
    allocated = [c for a, c in zip(args, cidrs, strict=True) if not isinstance(a, ipam.Claim)]
    with contextlib.suppress(ClientError):
        ipam.free(ident, allocated)


@click.command()
@click.argument("args", nargs=-1, metavar="[ADDR...] CONTAINER")
def detach(args: Sequence[str]) -> None:
    """Disconnect a container: weave detach [ADDR...] CONTAINER (all addresses if none given).

    Prints the IPs removed.
    """
    with reported("detach"):
        addrs, spec = split_container_args(args)
        ref = _dp().resolve_container(spec)
        cidrs = ipam.lookup(ref.ident, addrs)
        if addrs and not cidrs:
            return  # net: matched nothing
        form = [("ident", ref.ident), ("netns", ref.netns_path)]
        form += [("cidr", str(c)) for c in cidrs]
        answer = json.loads(_router("POST", "/detach", form)[1])
        removed = [Cidr(c) for c in answer["removed"]]
        if not answer["dropped"]:  # the router released everything if it dropped it
            ipam.free(ref.ident, removed)
    if removed:
        click.echo(show_ips(removed))


# --- ps ------------------------------------------------------------------------------------


def _expose_line() -> str | None:
    mac, cidrs = _dp().bridge_addresses(BRIDGE)
    return None if mac is None else _dp().format_ps_line(EXPOSE_IDENT, mac, cidrs)


def _kernel_line(ref: ContainerRef) -> str | None:
    mac, cidrs = _dp().container_addresses(ref)
    return None if mac is None else _dp().format_ps_line(ref.ident, mac, cidrs)


def _attachment_line(att: Attachment) -> str:
    """From the kernel when the container is there, else from what the router persisted."""
    dp = _dp()
    from weavenet.dataplane.observe import netns_identity

    if netns_identity(att.netns_path) == att.netns_id:
        with contextlib.suppress(dp.DataplaneError):  # vanished meanwhile
            line = _kernel_line(dp.ContainerRef(att.ident, att.netns_path))
            if line is not None:
                return line
    return str(dp.format_ps_line(att.ident, att.mac, att.cidrs))


def _persisted(state_dir: Path) -> list[Attachment]:
    from weavenet.io.store import read_attachments

    found = read_attachments(state_dir)
    return [] if found is None else found[0]


def _ps_named(specs: Sequence[str], state_dir: Path) -> list[str | None]:
    known = {a.ident: a for a in _persisted(state_dir)}
    lines: list[str | None] = []
    for spec in specs:
        if spec == EXPOSE_IDENT:
            lines.append(_expose_line())
            continue
        ref = _dp().resolve_container(spec)
        att = known.get(ref.ident)
        lines.append(_attachment_line(att) if att else _kernel_line(ref))
    return lines


state_dir_option = click.option(
    "--state-dir",
    envvar="WEAVE_STATE_DIR",
    default=DEFAULT_STATE_DIR,
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The router's state directory (env WEAVE_STATE_DIR).",
)


@click.command()
@click.argument("containers", nargs=-1, metavar="[CONTAINER...]")
@state_dir_option
def ps(containers: Sequence[str], state_dir: Path) -> None:
    """List attached containers: <id> <mac> <cidr>... (weave:expose is the bridge)."""
    with reported("ps"):
        if containers:
            lines = _ps_named(containers, state_dir)
        else:
            lines = [_expose_line(), *(_attachment_line(a) for a in _persisted(state_dir))]
    for line in lines:
        if line is not None:
            click.echo(line)


# --- expose / hide -------------------------------------------------------------------------


@click.command(context_settings={"help_option_names": ["--help"]})  # -h is the FQDN
@click.option("--without-masquerade", is_flag=True, help="No NAT for the exposed subnet.")
@click.option("-h", "fqdn", metavar="FQDN", help="DNS name for the host (accepted; no DNS yet).")
@timeout_option
@click.argument("addresses", nargs=-1, metavar="[ADDR...]")
def expose(
    without_masquerade: bool, fqdn: str | None, timeout: float | None, addresses: Sequence[str]
) -> None:
    """Give the host an address on the weave network: weave expose [ADDR...] (no ADDR:
    IPAM allocates one). Prints the IPs."""
    with reported("expose"):
        addrs = ipam.parse_addresses(addresses, EXAMPLE)
        cidrs = ipam.allocate(EXPOSE_IDENT, addrs, "expose", timeout, sys.stderr)
        query = "?skipNAT=true" if without_masquerade else ""
        for cidr in cidrs:
            _router("POST", f"/expose/{cidr.ip}/{cidr.network.prefixlen}{query}")
    click.echo(show_ips(cidrs))


def _exposed_now() -> list[Cidr]:
    snapshot = json.loads(_router("GET", "/attachments")[1])
    return [Cidr(e["cidr"]) for e in snapshot.get("exposed", [])]


@click.command()
@click.argument("addresses", nargs=-1, metavar="[ADDR...]")
def hide(addresses: Sequence[str]) -> None:
    """Take exposed addresses off the host: weave hide [ADDR...] (no ADDR: all of them).
    Prints the IPs."""
    with reported("hide"):
        addrs = ipam.parse_addresses(addresses, EXAMPLE)
        cidrs = ipam.lookup(EXPOSE_IDENT, addrs) if addrs else _exposed_now()
        for cidr in cidrs:
            _router("DELETE", f"/expose/{cidr.ip}/{cidr.network.prefixlen}")
        ipam.free(EXPOSE_IDENT, cidrs)
    if cidrs:
        click.echo(show_ips(cidrs))


COMMANDS: tuple[click.Command, ...] = (attach, detach, ps, expose, hide)
