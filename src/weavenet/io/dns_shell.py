"""WeaveDNS for a running router: the nameserver on the gossip channel, its timer, and the
DNS servers (one per listen address) that answer from it.

:func:`start_dns` builds a :class:`DnsShell` for a router core. Two ways to drive the
nameserver's timer (tombstone expiry) are supported:

- ``add_ticker`` given (``MeshShell.add_ticker`` on branch h-edge): the shell is a
  ``Ticker`` (``tick``/``next_wakeup``/``run_effects``) on the mesh shell's one timer;
- ``add_ticker`` None: the shell arms its own asyncio timer, checking at least every
  ``OWN_TIMER_PERIOD`` seconds (gossip that brings tombstones arrives through router entry
  points we do not see, so the period bounds how late an expiry can be; Go checks every
  ``tombstoneTimeout`` / 10 anyway).

Clock: the router core's ``now`` is ``loop.time()``; the nameserver turns it into Unix
time with ``wall_offset`` (``MeshShell.wall_offset``) for gossip timestamps and tombstones.

Every nameserver call made here, outside a router entry point (HTTP, attach, container
death), may queue gossip in the router: ``run_router_effects`` (``MeshShell.run_effects``)
is called after it so that the gossip goes out at once.

Listen addresses are added with :meth:`DnsShell.listen` (``--dns-listen-address``) or by
:class:`weavenet.io.dns_listeners.DnsListeners` (one per attached subnet). No listen
address is ever used as an upstream server.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
from collections.abc import Callable
from typing import Protocol

import msgspec
import msgspec.structs

from weavenet.core.dns.entries import Entry
from weavenet.core.dns.nameserver import DEFAULT_DOMAIN, NAMESERVER_CHANNEL, Nameserver
from weavenet.core.dns.resolvconf import DEFAULT_PATH
from weavenet.core.dns.resolver import DEFAULT_TTL, Resolver, ResolverConfig, networks
from weavenet.core.dns.upstream import DEFAULT_TIMEOUT, DNS_PORT, Upstream
from weavenet.core.errors import ConfigError
from weavenet.core.mesh.gossip import Gossip, Gossiper
from weavenet.io.dns_server import DnsServer
from weavenet.io.foreground import Foreground

log = logging.getLogger("weavenet.dns")

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
OWN_TIMER_PERIOD = 30.0  # seconds between tombstone checks when we run our own timer


class DnsSettings(msgspec.Struct, frozen=True):
    """The DNS flags of ``weaver`` (Go: --dns-domain, --dns-listen-address, --dns-ttl,
    --dns-fallback-timeout (ours, Go has 5 s fixed), --resolv-conf, --dns-all-answers)."""

    domain: str = DEFAULT_DOMAIN
    ttl: int = DEFAULT_TTL
    fallback_timeout: float = DEFAULT_TIMEOUT
    resolv_conf: str = DEFAULT_PATH
    all_answers: bool = False
    listen_address: str | None = None  # "host:port"; None: one address per attached subnet
    allowed_networks: tuple[str, ...] = ()  # clients we recurse for (IPAM universe, subnets)
    upstream_port: int = DNS_PORT  # tests point upstreams at other ports


class RouterApi(Protocol):
    """The part of the router core (contract A) WeaveDNS uses."""

    @property
    def name(self) -> int: ...
    def new_gossip(self, channel: str, gossiper: Gossiper) -> Gossip: ...
    def known_peers(self) -> dict[int, str]: ...
    def on_peer_gone(self, callback: Callable[[int, float], None]) -> None: ...


class Ticker(Protocol):
    def tick(self, now: float) -> None: ...
    def next_wakeup(self) -> float: ...
    def run_effects(self) -> None: ...


def parse_listen_address(text: str) -> tuple[str, int]:
    """``--dns-listen-address``: ``host:port`` or ``[v6]:port``; ValueError says what is wrong."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(
            f"invalid --dns-listen-address {text!r}: expected IP:PORT, e.g. 0.0.0.0:53"
        )
    return host.strip("[]"), int(port)


class DnsShell:
    """Owns the Nameserver and the DNS servers; implements ``DnsControl`` (api.dns_http)."""

    def __init__(
        self,
        router: RouterApi,
        settings: DnsSettings,
        run_router_effects: Callable[[], None],
        wall_offset: Callable[[], float],
        container_running: Callable[[str], bool | None] = lambda _c: None,
        rng: random.Random | None = None,
        foreground: Foreground | None = None,
    ) -> None:
        """``container_running(id)``: False when the container is known to be stopped
        (PUT /name check-alive), None when that cannot be told. ``foreground``: the
        router's, told of queries waiting on every listener (io/foreground.py)."""
        self.settings = settings
        self.loop = asyncio.get_running_loop()
        self.nameserver = Nameserver(router.name, settings.domain, router, wall_offset)
        self.nameserver.attach_gossip(router.new_gossip(NAMESERVER_CHANNEL, self.nameserver))
        router.on_peer_gone(self.nameserver.peer_gone)
        self._run_router_effects = run_router_effects
        self._container_running = container_running
        self._rng = rng or random.Random()
        self._allowed = networks(settings.allowed_networks)
        self._servers: dict[tuple[str, int], DnsServer] = {}
        self._subnets: dict[tuple[str, int], IpNetwork] = {}
        self._timer: asyncio.TimerHandle | None = None
        self.foreground = foreground

    # -- listen addresses --

    async def listen(self, host: str, port: int, subnet: str | None = None) -> tuple[str, int]:
        """Serve on ``host:port`` (UDP and TCP); returns the bound address (port 0: any).
        ``subnet``: the containers this listener is for (chosen by ``dns_address``)."""
        for (h, p), _server in self._servers.items():
            if h == host and (p == port or port == 0):
                return h, p
        server = DnsServer(
            Resolver(self._resolver_config(), self.nameserver),
            Upstream(self.settings.fallback_timeout),
            self.settings.resolv_conf,
            upstream_port=self.settings.upstream_port,
            rng=self._rng,
            foreground=self.foreground,
        )
        bound = await server.start(host, port)
        self._servers[(host, bound)] = server
        if subnet is not None:
            self._subnets[(host, bound)] = ipaddress.ip_network(subnet, strict=False)
        self._exclude_listeners()
        return host, bound

    def allow_network(self, cidr: str) -> None:
        """Recurse for clients in ``cidr`` too (a newly used subnet)."""
        (net,) = networks([cidr])
        if net in self._allowed:
            return
        self._allowed = (*self._allowed, net)
        for server in self._servers.values():
            server.resolver = Resolver(self._resolver_config(), self.nameserver)

    def _resolver_config(self) -> ResolverConfig:
        s = self.settings
        return ResolverConfig(s.domain, s.ttl, s.all_answers, self._allowed)

    def _exclude_listeners(self) -> None:
        hosts = tuple(h for h, _ in self._servers)
        for server in self._servers.values():
            server.exclude_upstreams(hosts)

    def listen_addresses(self) -> list[tuple[str, int]]:
        return list(self._servers)

    def servers(self) -> list[DnsServer]:
        return list(self._servers.values())

    # -- DnsControl (HTTP, attach, container death) --

    @property
    def domain(self) -> str:
        return self.nameserver.domain

    @property
    def ttl(self) -> int:
        return self.settings.ttl

    def dns_address(self, client_ip: str | None = None) -> str | None:
        """``host:port`` of the listener a client at ``client_ip`` should use: the one in
        its subnet when there is one, else the first; None before any listener exists."""
        if not self._servers:
            return None
        chosen = self._servers_for(client_ip)[0]
        return f"[{chosen[0]}]:{chosen[1]}" if ":" in chosen[0] else f"{chosen[0]}:{chosen[1]}"

    def _servers_for(self, client_ip: str | None) -> list[tuple[str, int]]:
        """Listeners, the most specific subnet holding ``client_ip`` first."""
        addrs = list(self._servers)
        try:
            client = ipaddress.ip_address(client_ip) if client_ip else None
        except ValueError:
            client = None
        if client is None:
            return addrs
        near = [a for a in addrs if a in self._subnets and client in self._subnets[a]]
        near.sort(key=lambda a: -self._subnets[a].prefixlen)
        return near + [a for a in addrs if a not in near]

    def add_entry(self, hostname: str, container: str, addr: int) -> Entry | None:
        entry = self.nameserver.add_entry(hostname, container, addr, self.loop.time())
        self._changed()
        return entry

    def delete_entries(
        self, container: str | None = None, addr: int | None = None, hostname: str | None = None
    ) -> list[Entry]:
        done = self.nameserver.delete_entries(container, addr, hostname, now=self.loop.time())
        self._changed()
        return done

    def container_gone(self, container: str) -> bool:
        return self._container_running(container) is False

    def entries(self) -> list[Entry]:
        return self.nameserver.entries()

    def upstream_servers(self) -> tuple[str, ...]:
        servers = self.servers()
        return servers[0].upstream_servers() if servers else ()

    def local_entry_count(self) -> int:
        return self.nameserver.local_entry_count()

    def _changed(self) -> None:
        self._run_router_effects()
        if self._timer is not None:  # own-timer mode: a new tombstone may be due sooner
            self._arm()

    # -- Ticker --

    def tick(self, now: float) -> None:
        self.nameserver.tick(now)

    def next_wakeup(self) -> float:
        return self.nameserver.next_wakeup()

    def run_effects(self) -> None:
        """Nothing of our own: the nameserver's gossip leaves through the router's effects."""

    # -- own timer (no MeshShell tickers) --

    def run_own_timer(self) -> None:
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        now = self.loop.time()
        when = min(self.next_wakeup(), now + OWN_TIMER_PERIOD)
        self._timer = self.loop.call_at(max(when, now), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.tick(self.loop.time())
        self._arm()

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for server in self._servers.values():
            await server.close()
        self._servers.clear()


async def start_dns(
    router: RouterApi,
    settings: DnsSettings,
    run_router_effects: Callable[[], None],
    wall_offset: Callable[[], float],
    *,
    add_ticker: Callable[[Ticker], None] | None = None,
    container_running: Callable[[str], bool | None] = lambda _c: None,
    rng: random.Random | None = None,
    foreground: Foreground | None = None,
) -> DnsShell:
    """Register WeaveDNS with ``router`` and, with ``settings.listen_address``, serve there.

    Without a listen address, serving starts when the integrator's attach path calls
    ``DnsListeners.ensure_subnet`` for the subnet of the first container attached in it.
    """
    shell = DnsShell(
        router, settings, run_router_effects, wall_offset, container_running, rng, foreground
    )
    if add_ticker is not None:
        add_ticker(shell)
    else:
        shell.run_own_timer()
    if settings.listen_address is not None:
        host, port = parse_listen_address(settings.listen_address)
        try:
            await shell.listen(host, port)
        except OSError as exc:
            await shell.stop()
            raise ConfigError(
                f"cannot serve DNS on {settings.listen_address}: {exc.strerror or exc}; "
                "free that port or give another --dns-listen-address (or --no-dns)"
            ) from exc
    run_router_effects()
    log.info("DNS domain %s, TTL %d", settings.domain, settings.ttl)
    return shell


def with_allowed(settings: DnsSettings, *cidrs: str) -> DnsSettings:
    """``settings`` recursing for ``cidrs`` too (e.g. the IPAM universe)."""
    return msgspec.structs.replace(settings, allowed_networks=(*settings.allowed_networks, *cidrs))
