"""``weave attach|detach|ps|expose|hide``: the CLI side of the dataplane.

These commands act on the kernel directly (no router call), in the caller's own network
namespace, which must be the one ``weave launch`` created the ``weave`` bridge in. IP
allocation (IPAM) does not exist yet, so every address is explicit: ``CIDR`` or ``ip:CIDR``.

State in ``--state-dir`` (env ``WEAVE_STATE_DIR``, default /var/lib/weave), each file
replaced atomically (temp file + rename) while holding ``dataplane.lock``:
``attachments.json`` ({ident: {"netns": path, "netns_id": "dev:ino"}}) lets ``weave ps`` list
bare-netns containers; ``firewall.json`` (``FirewallState.to_json()``) is what the router
re-applies if the ruleset is flushed. ``weavenet.dataplane`` (pyroute2) is imported lazily
so the other ``weave`` commands do not pay for it at start-up.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

import click

from weavenet.cli.launcher import DEFAULT_STATE_DIR
from weavenet.core.errors import WeaveError

if TYPE_CHECKING:
    from weavenet.dataplane import ContainerRef, FirewallState

BRIDGE = "weave"
EXPOSE_IDENT = "weave:expose"
ATTACHMENTS_FILE = "attachments.json"
FIREWALL_FILE = "firewall.json"
LOCK_FILE = "dataplane.lock"
EXAMPLE = "10.2.1.254/24"  # for expose/hide
NO_BRIDGE = "weave bridge not found: run 'weave launch' first"
NO_IPAM = "IP allocation must be enabled to {what} (IPAM arrives in a later release)"

Cidr = ipaddress.IPv4Interface


class ArgumentError(WeaveError):
    """A command-line argument the user got wrong."""


def _dp() -> ModuleType:
    import weavenet.dataplane as dp

    return dp


def fail(command: str, message: str) -> NoReturn:
    """Abort with ``weave: COMMAND: MESSAGE`` (one line) and exit status 1."""
    raise click.ClickException(f"{command}: {' '.join(message.split())}")


@contextlib.contextmanager
def reported(command: str) -> Iterator[None]:
    """Turn our own errors (bad arguments, kernel refusals, file trouble) into one line."""
    try:
        yield
    except WeaveError as exc:
        fail(command, str(exc))
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        fail(command, f"{where}{exc.strerror or exc}")


# --- address arguments ----------------------------------------------------------------------


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_address_arg(arg: str) -> bool:
    """True if `arg` is meant as an address (``ip:``/``net:`` or IP/prefix), not a container."""
    return arg.startswith(("ip:", "net:")) or ("/" in arg and _is_ip(arg.partition("/")[0]))


def parse_address(arg: str, example: str = "10.2.1.1/24") -> Cidr:
    """``CIDR`` or ``ip:CIDR`` -> an IPv4 host address with its prefix length."""
    if arg.startswith("net:"):
        raise ArgumentError(NO_IPAM.format(what="use 'net:'") + f"; give an address like {example}")
    text = arg.removeprefix("ip:")
    if "/" not in text:
        if text != arg or _is_ip(text):
            raise ArgumentError(f"address {arg!r} needs a prefix length, e.g. {example}")
        raise ArgumentError(f"unexpected argument {arg!r}: expected an address like {example}")
    try:
        cidr = ipaddress.ip_interface(text)
    except ValueError:
        raise ArgumentError(f"invalid address {arg!r}: expected e.g. {example}") from None
    if not isinstance(cidr, Cidr):
        raise ArgumentError(f"address {arg!r} is IPv6; only IPv4 addresses are supported")
    net = cidr.network
    if net.prefixlen <= 30 and cidr.ip in (net.network_address, net.broadcast_address):
        kind = "network" if cidr.ip == net.network_address else "broadcast"
        raise ArgumentError(f"{arg} is the {kind} address of {net}; give e.g. {example}")
    return cidr


def parse_addresses(args: Sequence[str], example: str = "10.2.1.1/24") -> list[Cidr]:
    """Parse every arg as an address; drop exact repeats, refuse one IP with two prefixes."""
    cidrs: dict[ipaddress.IPv4Address, Cidr] = {}
    for arg in args:
        cidr = parse_address(arg, example)
        if cidrs.get(cidr.ip, cidr) != cidr:
            raise ArgumentError(f"address {cidr.ip} given twice with different prefix lengths")
        cidrs[cidr.ip] = cidr
    return list(cidrs.values())


def split_container_args(args: Sequence[str]) -> tuple[list[Cidr], str]:
    """``[ADDR...] CONTAINER`` -> (addresses, container spec)."""
    if not args:
        raise ArgumentError("missing container: give netns:NAME, pid:PID or a Docker container")
    *addr_args, spec = args
    if is_address_arg(spec):
        raise ArgumentError(f"missing container after {spec}: addresses first, then one container")
    return parse_addresses(addr_args), spec


def show_ips(cidrs: Sequence[Cidr]) -> str:
    """Addresses without their prefix, space-separated, as Weave prints them."""
    return " ".join(str(c.ip) for c in cidrs)


# --- state files ----------------------------------------------------------------------------


def write_json_atomic(path: Path, data: Any) -> None:
    """Write `data` to a temp file beside `path`, fsync, then rename it over `path`."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_json(path: Path) -> Any:
    """The JSON in `path`, or None if there is no such file."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise WeaveError(f"{path} is not valid JSON ({exc})") from None


@contextlib.contextmanager
def locked(state_dir: Path) -> Iterator[None]:
    """Hold ``<state_dir>/dataplane.lock`` (creating the directory) for a read-modify-write."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # other weave commands hold it for a second at most
        yield
    finally:
        os.close(fd)  # releases the lock


def netns_id(path: str) -> str | None:
    """``dev:ino`` of a namespace file (tells a reused /proc/PID apart), None if it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{st.st_dev}:{st.st_ino}"


def load_attachments(state_dir: Path) -> dict[str, dict[str, str]]:
    """ident -> {"netns": path, "netns_id": id}; an unreadable file counts as empty."""
    path = state_dir / ATTACHMENTS_FILE
    try:
        data = read_json(path)
    except (OSError, WeaveError) as exc:
        click.echo(f"weave: ignoring {path}: {exc}", err=True)
        return {}
    if not isinstance(data, dict):
        return {}
    records: dict[str, dict[str, str]] = {}
    for ident, rec in data.items():
        if isinstance(rec, dict) and isinstance(rec.get("netns"), str):
            records[str(ident)] = {k: str(v) for k, v in rec.items()}
    return records


def update_attachments(
    state_dir: Path, add: ContainerRef | None = None, drop: Sequence[str] = ()
) -> None:
    """Record `add` and forget the idents in `drop` (call with the lock held)."""
    records = load_attachments(state_dir)
    new = {k: v for k, v in records.items() if k not in drop}
    if add is not None:
        new[add.ident] = {"netns": add.netns_path, "netns_id": netns_id(add.netns_path) or ""}
    if new != records or not (state_dir / ATTACHMENTS_FILE).exists():
        write_json_atomic(state_dir / ATTACHMENTS_FILE, new)


def is_live(record: dict[str, str]) -> bool:
    """The recorded namespace still exists and is the same namespace."""
    now = netns_id(record["netns"])
    return now is not None and record.get("netns_id", now) in ("", now)


def load_firewall(state_dir: Path) -> FirewallState:
    data = read_json(state_dir / FIREWALL_FILE)
    if data is None:
        empty: FirewallState = _dp().FirewallState(BRIDGE)
        return empty
    try:
        state: FirewallState = _dp().FirewallState.from_json(data)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise WeaveError(f"{state_dir / FIREWALL_FILE} is not a firewall state ({exc})") from None
    return state


# --- commands -------------------------------------------------------------------------------


state_dir_option = click.option(
    "--state-dir",
    envvar="WEAVE_STATE_DIR",
    default=DEFAULT_STATE_DIR,
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where attachments.json and firewall.json live (env WEAVE_STATE_DIR).",
)


def _require_bridge() -> None:
    if not _dp().bridge_exists(BRIDGE):
        raise WeaveError(NO_BRIDGE)


@click.command()
@click.option("--no-multicast-route", is_flag=True, help="No 224.0.0.0/4 route in the container.")
@click.option("--without-dns", is_flag=True, hidden=True)  # no DNS yet: nothing to skip
@click.argument("args", nargs=-1, metavar="[ADDR...] CONTAINER")
@state_dir_option
def attach(
    no_multicast_route: bool, without_dns: bool, args: Sequence[str], state_dir: Path
) -> None:
    """Connect a container: weave attach [--no-multicast-route] ADDR... CONTAINER.

    ADDR is CIDR or ip:CIDR (e.g. 10.2.1.1/24); CONTAINER is netns:NAME, netns:/path,
    pid:PID or a Docker container id/name. Prints the IPs.
    """
    with reported("attach"):
        cidrs, spec = split_container_args(args)
        _required(cidrs, "attach", "10.2.1.1/24")
        dp = _dp()
        ref = dp.resolve_container(spec)
        _require_bridge()
        with locked(state_dir):
            dp.attach(ref, cidrs, bridge=BRIDGE, multicast_route=not no_multicast_route)
            update_attachments(state_dir, add=ref)
    click.echo(show_ips(cidrs))


@click.command()
@click.argument("args", nargs=-1, metavar="[ADDR...] CONTAINER")
@state_dir_option
def detach(args: Sequence[str], state_dir: Path) -> None:
    """Disconnect a container: weave detach [ADDR...] CONTAINER (all addresses if none given).

    Prints the IPs removed.
    """
    with reported("detach"):
        cidrs, spec = split_container_args(args)
        dp = _dp()
        ref = dp.resolve_container(spec)
        with locked(state_dir):
            removed = dp.detach(ref, cidrs or None)
            if dp.container_addresses(ref).mac is None:
                update_attachments(state_dir, drop=[ref.ident])
    if removed:
        click.echo(show_ips(removed))


def _expose_line() -> str | None:
    mac, cidrs = _dp().bridge_addresses(BRIDGE)
    return None if mac is None else _dp().format_ps_line(EXPOSE_IDENT, mac, cidrs)


def _container_line(ref: ContainerRef) -> str | None:
    mac, cidrs = _dp().container_addresses(ref)
    return None if mac is None else _dp().format_ps_line(ref.ident, mac, cidrs)


def _ps_named(specs: Sequence[str]) -> list[str | None]:
    dp = _dp()
    return [
        _expose_line() if spec == EXPOSE_IDENT else _container_line(dp.resolve_container(spec))
        for spec in specs
    ]


def _ps_all(state_dir: Path) -> list[str | None]:
    """The bridge, then every recorded attachment still alive; forget the dead ones."""
    dp = _dp()
    lines, dead = [_expose_line()], []
    for ident, record in load_attachments(state_dir).items():
        line = None
        if is_live(record):
            with contextlib.suppress(dp.DataplaneError):  # vanished meanwhile
                line = _container_line(dp.ContainerRef(ident, record["netns"]))
        if line is None:
            dead.append(ident)
        lines.append(line)
    if dead:
        with locked(state_dir):
            update_attachments(state_dir, drop=dead)
    return lines


@click.command()
@click.argument("containers", nargs=-1, metavar="[CONTAINER...]")
@state_dir_option
def ps(containers: Sequence[str], state_dir: Path) -> None:
    """List attached containers: <id> <mac> <cidr>... (weave:expose is the bridge)."""
    with reported("ps"):
        lines = _ps_named(containers) if containers else _ps_all(state_dir)
    for line in lines:
        if line is not None:
            click.echo(line)


def _change_firewall(
    state_dir: Path, cidrs: Sequence[Cidr], change: Callable[[Cidr, FirewallState], FirewallState]
) -> None:
    """Apply `change` per address, persisting the state after each (the router re-applies it)."""
    state = load_firewall(state_dir)
    for cidr in cidrs:
        state = change(cidr, state)
        write_json_atomic(state_dir / FIREWALL_FILE, state.to_json())


@click.command()
@click.option("--without-masquerade", is_flag=True, help="No NAT for the exposed subnet.")
@click.argument("addresses", nargs=-1, metavar="ADDR...")
@state_dir_option
def expose(without_masquerade: bool, addresses: Sequence[str], state_dir: Path) -> None:
    """Give the host an address on the weave network: weave expose ADDR... Prints the IPs."""
    with reported("expose"):
        cidrs = _required(parse_addresses(addresses, EXAMPLE), "expose", EXAMPLE)
        _require_bridge()
        with locked(state_dir):
            masquerade = not without_masquerade
            _change_firewall(
                state_dir, cidrs, lambda c, s: _dp().expose(c, BRIDGE, masquerade, state=s)
            )
    click.echo(show_ips(cidrs))


@click.command()
@click.argument("addresses", nargs=-1, metavar="ADDR...")
@state_dir_option
def hide(addresses: Sequence[str], state_dir: Path) -> None:
    """Take exposed addresses off the host: weave hide ADDR... Prints the IPs."""
    with reported("hide"):
        cidrs = _required(parse_addresses(addresses, EXAMPLE), "hide", EXAMPLE)
        with locked(state_dir):
            _change_firewall(state_dir, cidrs, lambda c, s: _dp().hide(c, state=s))
    click.echo(show_ips(cidrs))


def _required(cidrs: list[Cidr], command: str, example: str) -> list[Cidr]:
    """`cidrs`, unless empty: with no address Weave would ask IPAM, which we do not have."""
    if not cidrs:
        what = f"{command} without an address"
        raise ArgumentError(NO_IPAM.format(what=what) + f"; give one like {example}")
    return cidrs


COMMANDS: tuple[click.Command, ...] = (attach, detach, ps, expose, hide)
