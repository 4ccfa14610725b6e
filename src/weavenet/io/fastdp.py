"""The asyncio shell of fastdp: heartbeats in and out, and the plan/apply loop that keeps
the kernel VXLAN state as the core wants it.

Heartbeats must prove the kernel path, not just UDP: we send each one from an ordinary
UDP socket (DF set, so it is also the MTU probe) as a VXLAN packet to the peer's port
6784 with the heartbeat VNI. There the peer's *kernel* VXLAN code decapsulates it into
its heartbeat device, a second VXLAN device on the same port that is not on the bridge,
and the peer reads it with an AF_PACKET socket bound to that device. Reading heartbeats
off the data device instead would put every data frame through a packet tap, and zero
MACs there would be learnt by the device; sending them through the data device would
need all-zero flood entries, which would also flood broadcasts (see vxlan_plan).

Every :data:`APPLY_PERIOD` the loop plans the desired state from the switch and the MAC
cache, observes the kernel, applies the difference in a worker thread and logs what it
changed; whatever the kernel lost of the state applied the round before is drift
(someone deleted the device or an fdb entry): logged as a repair and counted in the
report (``OverlayDiagnostics.fastdp.KernelRepairs``). Drift is noticed from the kernel's
link and neighbour notifications (:mod:`weavenet.dataplane.kernel_watch`, read on this
loop): one that contradicts the plan brings an observing round forward.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Callable

from weavenet.core.mesh.router import Router
from weavenet.core.overlay.datapath import Datapath
from weavenet.core.overlay.fastdp import FASTDP, FastdpOverlay
from weavenet.core.overlay.switch import OverlaySwitch
from weavenet.core.overlay.vxlan_plan import (
    DelFdb,
    DelPort,
    Desired,
    Op,
    VxlanConfig,
    additions_only,
    diff,
    plan,
)
from weavenet.core.overlay.vxlan_watch import DeviceIndexes, KernelEvent, drifted
from weavenet.dataplane import kernel_watch, vxlan
from weavenet.dataplane.netlink import DataplaneError
from weavenet.io.foreground import Foreground
from weavenet.io.mesh_tcp import MeshShell

log = logging.getLogger("weavenet.fastdp")

APPLY_PERIOD = 1.0
# A MAC newly seen behind a peer fastdp carries is pinned at once, not at the next period:
# until it is, that flow crosses the userspace sleeve (at ~1 Gbit/s a period is ~100 MB).
# Rounds brought forward this way are at least EARLY_GAP apart.
EARLY_GAP = 0.05
# Observing the kernel (a netlink dump of links and of the fdb) costs ~13 ms of CPU at 50
# peers, ~27 ms at 100 (bench/fastdp_observe.py): every second in every router, that
# alone kept a core busy at 50 routers. A round whose plan only adds to the last one
# applies the additions without looking; the kernel is observed when the plan loses
# something (learnt entries towards a peer must go), soon after a notification says our
# state drifted, and at least every OBSERVE_PERIOD: a safety net for drift that no
# notification reports (an entry replaced rather than deleted: RTM_NEWNEIGH is ignored,
# every learnt MAC sends one).
# Without the notifications (their socket failed) the net is all there is, and tighter:
# UNWATCHED_OBSERVE_PERIOD.
OBSERVE_PERIOD = 60.0
UNWATCHED_OBSERVE_PERIOD = 5.0
SOL_PACKET = 263  # missing from this CPython's socket module
PACKET_IGNORE_OUTGOING = 23
ETH_P_ALL = 0x0003
IP_MTU_DISCOVER, IP_PMTUDISC_DO = 10, 2
READ_BATCH = 32


class FastdpShell:
    def __init__(
        self,
        router: Router,
        switch: OverlaySwitch,
        overlay: FastdpOverlay,
        datapath: Datapath,
        config: VxlanConfig,
        activity: Callable[[set[int]], None],
        foreground: Foreground | None = None,
    ) -> None:
        self.router, self.switch, self.overlay = router, switch, overlay
        self.datapath, self.config, self.activity = datapath, config, activity
        self.loop = asyncio.get_running_loop()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
        self.sock.setblocking(False)
        self.raw: socket.socket | None = None
        self._raw_index: int | None = None
        self._last: Desired | None = None
        self._target: Desired | None = None  # the plan being applied (or last applied)
        self._indexes = DeviceIndexes()
        self._observed_at = float("-inf")
        self._suspect = False  # a notification contradicted the plan: observe soon
        self._wake = asyncio.Event()
        self._watch = self._open_watch()
        self._planned_macs = -1  # the MAC cache generation the last plan saw
        self.sent_bytes = 0
        self.foreground = foreground  # the mesh's: heartbeats are control work
        self._first = self.loop.create_future()
        self._task = self.loop.create_task(self._keep())

    async def started(self) -> None:
        """Wait for the first round (which creates the devices) to be done."""
        await asyncio.shield(self._first)

    def close(self) -> None:
        self._task.cancel()
        self._close_raw()
        self._close_watch()
        self.sock.close()

    @property
    def observe_period(self) -> float:
        """The longest gap between two observations of the kernel."""
        return OBSERVE_PERIOD if self._watch is not None else UNWATCHED_OBSERVE_PERIOD

    # ---- heartbeats ---------------------------------------------------------------------
    def flush(self) -> None:
        """Send the heartbeats the forwarders queued (called after every mesh round)."""
        for beat in self.overlay.take_heartbeats():
            try:
                self.sent_bytes += self.sock.sendto(beat.payload, beat.addr)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.ENOBUFS):
                    log.debug("fastdp: heartbeat to %s failed: %s", beat.addr, exc)

    def _on_raw(self) -> None:
        raw = self.raw
        if raw is None:
            return
        # Only heartbeats reach this socket (the kernel forwards the containers'
        # traffic): like the mesh's backlog they wait while an API request is served,
        # and the kernel keeps them (the reader is called again on the next turn).
        if self.foreground is not None and self.foreground.busy():
            return
        now = self.loop.time()
        changed: set[int] = set()
        for _ in range(READ_BATCH):
            try:
                frame = raw.recv(65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                log.debug("fastdp: heartbeat socket: %s", exc)
                break
            peer = self.overlay.heartbeat_frame(frame, now)
            if peer is not None:
                changed.add(peer)
        if changed:
            self.activity(changed)

    def _open_raw(self, index: int | None) -> None:
        name = self.config.heartbeat_device().name
        if index is None or index == self._raw_index:
            return
        self._close_raw()
        raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        raw.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        raw.bind((name, ETH_P_ALL))
        raw.setblocking(False)
        self.raw, self._raw_index = raw, index
        self.loop.add_reader(raw.fileno(), self._on_raw)

    def _close_raw(self) -> None:
        if self.raw is not None:
            self.loop.remove_reader(self.raw.fileno())
            self.raw.close()
            self.raw, self._raw_index = None, None

    # ---- kernel notifications -----------------------------------------------------------
    def _open_watch(self) -> kernel_watch.KernelWatch | None:
        try:
            watch = kernel_watch.open_watch()
        except DataplaneError as exc:
            self._watch_failed(exc)
            return None
        self.loop.add_reader(watch.fileno(), self._on_watch)
        return watch

    def _watch_failed(self, exc: DataplaneError) -> None:
        log.warning(
            "fastdp: cannot watch the kernel's notifications (%s); looking for drift every "
            "%g s instead",
            exc,
            UNWATCHED_OBSERVE_PERIOD,
        )

    def _close_watch(self) -> None:
        if self._watch is not None:
            self.loop.remove_reader(self._watch.fileno())
            self._watch.close()
            self._watch = None

    def _on_watch(self) -> None:
        if self._watch is None:
            return
        try:
            events = self._watch.read(self._indexes, self.config)
        except DataplaneError as exc:
            self._close_watch()  # once: from now on the tighter period
            self._watch_failed(exc)
            return
        target = self._target
        drift = [e for e in events if target is not None and drifted(e, target, self._indexes)]
        if drift and not self._suspect:  # one line per burst
            log.info("fastdp: the kernel reports drift, observing it now: %s", _brief(drift))
        if drift:
            self._suspect = True
            self._wake.set()  # _pause keeps rounds EARLY_GAP apart and so coalesces bursts

    # ---- the kernel state ---------------------------------------------------------------
    def notice_macs(self) -> None:
        """After a batch of frames: bring the next round forward if the MAC cache changed
        (it is cheap to check; most batches change nothing)."""
        if self.datapath.forwarder.macs.generation != self._planned_macs:
            self._wake.set()

    async def _pause(self) -> None:
        """Until the next period, or a MAC cache change (at least EARLY_GAP away)."""
        await asyncio.sleep(EARLY_GAP)  # a rate limit, not a synchronisation
        self._wake.clear()
        self.notice_macs()  # changes during the gap
        if self._suspect:  # drift noticed during the round or the gap
            self._wake.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), APPLY_PERIOD - EARLY_GAP)

    def desired(self) -> Desired:
        peers = {}
        for peer in self.switch.peers_using(FASTDP):
            fwd = self.overlay.connections.get(peer)
            if fwd is not None:
                peers[peer] = fwd.remote_ip
        cache = self.datapath.forwarder.macs
        self._planned_macs = cache.generation
        macs = [(mac, peer) for mac, peer, _ in cache.entries()]
        return plan(self.config, peers, macs)

    def _round(
        self, desired: Desired, last: Desired | None
    ) -> tuple[list[Op], list[Op], DeviceIndexes]:
        """In a worker thread: observe, diff, apply. Returns (ops applied, drift: what the
        kernel lost of the state applied last round, the devices' indexes now)."""
        observed, indexes = vxlan.observe(self.config)
        ops = diff(desired, observed)
        drift = [] if last is None else [op for op in diff(last, observed) if _restores(op)]
        if ops:
            indexes = indexes.updated(vxlan.apply(ops, self.config), desired)
        return ops, drift, indexes

    async def apply_once(self, force: bool = True) -> list[Op]:
        """One round; unless `force`, one that may skip observing (see OBSERVE_PERIOD)."""
        desired, last = self.desired(), self._last
        self._target = desired
        now = self.loop.time()
        if not force and last is not None and now - self._observed_at < self.observe_period:
            additions = additions_only(last, desired)
            if additions is not None:
                if additions:
                    await asyncio.to_thread(vxlan.apply, additions, self.config)
                    log.info("fastdp: applied %d change(s): %s", len(additions), additions)
                self._last = desired
                return additions
        self._observed_at, self._suspect = now, False
        ops, drift, self._indexes = await asyncio.to_thread(self._round, desired, last)
        changes = [op for op in ops if _restores(op)]
        if drift:
            self.overlay.record_repair()
            log.warning("fastdp: kernel state drifted from the plan; repaired: %s", drift)
        if changes:
            log.info("fastdp: applied %d change(s): %s", len(changes), changes)
        elif ops:  # entries the kernel learnt towards peers fastdp no longer carries
            log.debug("fastdp: removed %s", ops)
        self._last = desired
        self._open_raw(self._indexes.heartbeat)
        return ops

    async def _keep(self) -> None:
        failing: str | None = None
        while True:
            try:
                force = failing is not None or self._suspect or not self._first.done()
                await self.apply_once(force=force)
                failing = None
            except (OSError, DataplaneError) as exc:
                if str(exc) != failing:  # once per cause, not every second
                    log.error("fastdp: could not apply the VXLAN plan (retrying): %s", exc)
                failing = str(exc)
            if not self._first.done():
                self._first.set_result(None)
            await self._pause()


def _brief(events: list[KernelEvent]) -> str:
    shown = ", ".join(map(str, events[:3]))
    return shown if len(events) <= 3 else f"{shown} and {len(events) - 3} more"


def _restores(op: Op) -> bool:
    """Creates or re-creates state (deletions are routine: learnt entries, fallbacks)."""
    return not isinstance(op, DelFdb | DelPort)


async def start_fastdp(
    router: Router,
    switch: OverlaySwitch,
    datapath: Datapath,
    bridge: str,
    tap: str,
    mesh: MeshShell,
    frames: list[Callable[[], None]],
) -> FastdpShell:
    """Wire fastdp into the daemon: its heartbeats go out after every mesh round, and
    ``frames`` (hooks run after every batch of frames) gets its MAC check. The
    devices exist when this returns, so containers attached from now on get the bridge
    MTU that the VXLAN port imposes."""
    overlay = switch.overlays[0]
    assert isinstance(overlay, FastdpOverlay)
    config = VxlanConfig(bridge, tap, overlay.mtu, overlay.port)
    fastdp = FastdpShell(
        router, switch, overlay, datapath, config, mesh.overlay_activity, mesh.foreground
    )
    await fastdp.started()
    mesh.post_effects.append(fastdp.flush)
    frames.append(fastdp.notice_macs)
    mesh.sent_counters["fastdp"] = lambda: fastdp.sent_bytes
    log.info(
        "fastdp: VXLAN on UDP %d (MTU %d), attached to bridge %s", overlay.port, overlay.mtu, bridge
    )
    return fastdp
