"""The "nameserver" gossip channel owner (Go nameserver/nameserver.go), sans-IO.

Holds every peer's entries, answers lookups for the DNS resolver, and gossips changes
through the router's Gossip handle (contract A).  Every method takes ``now`` on the
router's clock (monotonic in the daemon); ``wall_offset()`` turns it into Unix time for
what crosses hosts: gossip Timestamps (checked against the receiver's clock) and
tombstones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import msgspec
import msgspec.structs

from weavenet.core.dns.codec import DnsGossipData, decode_gossip
from weavenet.core.dns.entries import TOMBSTONE_TIMEOUT, Entries, Entry, format_ip
from weavenet.core.errors import RemoteProtocolError
from weavenet.core.peername import format_peer_name

NAMESERVER_CHANNEL = "nameserver"
DEFAULT_DOMAIN = "weave.local."
GOSSIP_WINDOW = TOMBSTONE_TIMEOUT // 2  # max accepted clock skew, seconds (Go gossipWindow)

log = logging.getLogger("weavenet.dns")


class ClockSkewError(RemoteProtocolError):
    """The sender's clock differs from ours by more than GOSSIP_WINDOW."""


class PeerView(Protocol):
    def known_peers(self) -> dict[int, str]: ...


class GossipSender(Protocol):
    """The part of the router's Gossip handle (contract A) the nameserver sends with."""

    def gossip_broadcast(self, update: DnsGossipData, now: float) -> None: ...


def fqdn(name: str) -> str:
    return name if name.endswith(".") else name + "."


def is_subdomain(name: str, domain: str) -> bool:
    """miekg dns.IsSubDomain(domain, name), case-insensitively."""
    name, domain = fqdn(name).lower(), fqdn(domain).lower()
    return domain == "." or name == domain or name.endswith("." + domain)


class Nameserver:
    """Gossiper for NAMESERVER_CHANNEL plus the registration API the edge calls."""

    def __init__(
        self,
        our_name: int,
        domain: str,
        peers: PeerView,
        wall_offset: Callable[[], float] = lambda: 0.0,
    ) -> None:
        """``wall_offset()``: Unix time minus the router's ``now`` (MeshShell.wall_offset);
        the default suits callers whose ``now`` already is Unix time."""
        self.our_name = our_name
        self._wall_offset = wall_offset
        self.domain = fqdn(domain)
        self._peers = peers
        self._entries = Entries()
        self._gossip: GossipSender | None = None

    def attach_gossip(self, gossip: GossipSender) -> None:
        self._gossip = gossip

    # -- registration (the edge: HTTP /name, attach, container death) --

    def add_entry(self, hostname: str, container: str, addr: int, now: float) -> Entry | None:
        """Register hostname -> addr for a container; None if outside our domain."""
        hostname = fqdn(hostname)
        if not is_subdomain(hostname, self.domain):
            log.info(
                "ignoring registration %s %s %s (not a subdomain of %s)",
                hostname, format_ip(addr), container, self.domain,
            )  # fmt: skip
            return None
        log.info("adding entry for %s: %s -> %s", container, hostname, format_ip(addr))
        entry = self._entries.add(hostname, container, self.our_name, addr)
        self._broadcast([entry], now)
        return entry

    def delete_entries(
        self,
        container: str | None = None,
        addr: int | None = None,
        hostname: str | None = None,
        *,
        now: float,
    ) -> list[Entry]:
        """Tombstone our own entries matching every given part (None = wildcard)."""
        wanted = fqdn(hostname) if hostname is not None else None

        def match(e: Entry) -> bool:
            return (
                (container is None or e.container_id == container)
                and (addr is None or e.addr == addr)
                and (wanted is None or e.hostname == wanted)
            )

        done = self._entries.tombstone(self.our_name, match, self._unix(now))
        for entry in done:
            log.info("tombstoning entry %s -> %s", entry.hostname, format_ip(entry.addr))
        self._broadcast(done, now)
        return done

    def peer_gone(self, name: int, now: float) -> None:
        """A peer left the topology: forget its entries (no tombstones are sent)."""
        removed = self._entries.remove_origin(name)
        log.info("peer %s gone; removed %d entries", format_peer_name(name), removed)

    # -- queries --

    def lookup_name(self, name: str) -> list[int]:
        return list(self._entries.lookup(fqdn(name)))

    def lookup_name_tuple(self, lower_fqdn: str) -> tuple[int, ...]:
        """The query fast path: ``lower_fqdn`` already lowercased with its trailing dot."""
        return self._entries.lookup(lower_fqdn)

    def lookup_addr(self, addr: int) -> str | None:
        return self._entries.reverse(addr)

    def entries(self) -> list[Entry]:
        """Everything, tombstones included, in Go's storage order (status, report, /name)."""
        return self._entries.sorted()

    def local_entry_count(self) -> int:
        """The weave_dns_entries metric: live entries originated here."""
        return sum(1 for e in self._entries.sorted() if e.origin == self.our_name and e.live)

    @property
    def generation(self) -> int:
        return self._entries.generation

    # -- timers --

    def tick(self, now: float) -> None:
        self._entries.expire_tombstones(self._unix(now))

    def next_wakeup(self) -> float:
        oldest = self._entries.oldest_tombstone()
        if oldest is None:
            return float("inf")
        return oldest + TOMBSTONE_TIMEOUT + 1 - self._wall_offset()

    # -- Gossiper (contract A) --

    def on_gossip_unicast(self, src: int, msg: bytes, now: float) -> None:
        return None

    def on_gossip_broadcast(self, src: int, update: bytes, now: float) -> DnsGossipData | None:
        _, received = self._receive(update, now)
        return received if received.entries else None

    def gossip(self, now: float) -> DnsGossipData | None:
        entries = self._entries.sorted()
        return DnsGossipData(int(self._unix(now)), tuple(entries)) if entries else None

    def on_gossip(self, msg: bytes, now: float) -> DnsGossipData | None:
        new, _ = self._receive(msg, now)
        return new

    def _receive(self, msg: bytes, now: float) -> tuple[DnsGossipData | None, DnsGossipData]:
        """Go receiveGossip: (what is new to us, the filtered data to relay)."""
        timestamp, entries = decode_gossip(msg)
        unix = self._unix(now)
        delta = timestamp - int(unix)
        if abs(delta) > GOSSIP_WINDOW:
            raise ClockSkewError(f"host clock skew of {delta}s exceeds {GOSSIP_WINDOW}s limit")
        known = self._peers.known_peers()
        entries = [e for e in entries if e.origin in known]
        overridden: list[Entry] = []
        checked = [self._check_ours(e, unix, overridden.append) for e in entries]
        new = self._entries.merge(checked)
        self._broadcast(overridden, now)
        relay = DnsGossipData(timestamp, tuple(checked))
        return (DnsGossipData(int(unix), tuple(new)) if new else None), relay

    def _check_ours(self, entry: Entry, unix: float, override: Callable[[Entry], None]) -> Entry:
        """An entry claiming to be ours that disagrees with our data is replaced by ours."""
        if entry.origin != self.our_name:
            return entry
        ours = self._entries.get(entry.key)
        if ours is None:
            if entry.tombstone:
                return entry
            fixed = entry.tombstoned(unix)
        elif ours.version < entry.version or (
            ours.version == entry.version and ours.tombstone != entry.tombstone
        ):
            fixed = msgspec.structs.replace(ours, version=entry.version + 1)
        else:
            return entry
        override(fixed)
        return fixed

    def _broadcast(self, entries: list[Entry], now: float) -> None:
        if self._gossip is not None and entries:
            update = DnsGossipData(int(self._unix(now)), tuple(entries))
            self._gossip.gossip_broadcast(update, now)

    def _unix(self, now: float) -> float:
        return now + self._wall_offset()
