"""The userspace datapath in front of an ``IFF_VNET_HDR`` TAP (fast sleeve on), sans-IO.

Each frame the TAP gives us (a ``virtio_net_hdr`` and a frame, often a TSO superframe)
gets the sleeve's forwarding decision (:class:`~weavenet.core.overlay.forwarding.Forwarder`,
from its Ethernet header: the same MAC learning and routes). A frame with one next hop
whose fast sleeve is healthy goes to it whole, header and all, relayed frames included
(the relayed hop uses the best userspace overlay it has). Everything else (floods to
several neighbours, peers without a healthy fast sleeve, Go peers) goes to the
Weave-compatible sleeve as the frames a NIC would have sent (:func:`vnet.plain_frames`:
segmented, checksums completed).

Superframes from the fast sleeve get the same decision as sleeve records: injected into
the TAP with their vnet header (the kernel segments them towards the container), and/or
passed on to the next hop.
"""

from __future__ import annotations

import msgspec

from weavenet.core.mesh.routes import Routes
from weavenet.core.overlay.datapath import Datapath
from weavenet.core.overlay.fast_sleeve_codec import PEERS, Buffer
from weavenet.core.overlay.fast_sleeve_path import Delivered, FastSleevePath
from weavenet.core.overlay.forwarding import ETH_HEADER_LEN, Send
from weavenet.core.overlay.vnet import VNET, VnetError, plain_frames

HEADROOM = PEERS  # the TAP is read at this offset: the peers go in front, no copy


class VnetDatapath(msgspec.Struct):
    datapath: Datapath
    fast: FastSleevePath
    unsegmentable: int = 0  # superframes the sleeve could not take (dropped)
    _inject: list[Buffer] = msgspec.field(default_factory=list)

    def captured(self, buf: bytearray, length: int, routes: Routes, now: float) -> None:
        """``buf[HEADROOM : HEADROOM + length]`` came from the TAP (vnet header, frame).
        Fast sleeve sends refer to ``buf``: send them before reading into it again."""
        start = HEADROOM + VNET
        head = bytes(buf[start : start + ETH_HEADER_LEN])
        sends = self.datapath.forwarder.captured_header(head, length - VNET, routes, now)
        if len(sends) == 1:
            send = sends[0]
            fwd = self.fast.overlay.usable(send.next_hop)
            if fwd is not None:
                buf[0:6] = send.src.to_bytes(6, "big")
                buf[6:PEERS] = send.dst.to_bytes(6, "big")
                self.fast.send(fwd, memoryview(buf)[: HEADROOM + length])
                return
        if sends:
            self._to_sleeve(sends, memoryview(buf)[HEADROOM : HEADROOM + length], now, True)

    def delivered(self, got: Delivered, routes: Routes, now: float) -> None:
        packet = memoryview(got.packet)[PEERS:]
        head = bytes(packet[VNET : VNET + ETH_HEADER_LEN])
        size = len(packet) - VNET
        fwd = self.datapath.forwarder
        inject, sends = fwd.received_header(got.src, got.dst, head, size, routes, now)
        if inject:
            self._inject.append(packet)
        if len(sends) == 1 and got.dst != self.datapath.ourself:
            relay = self.fast.overlay.usable(sends[0].next_hop)
            if relay is not None:  # origin and destination stay as they came
                self.fast.send(relay, got.packet)
                return
        if sends:
            self._to_sleeve(sends, packet, now, False)

    def _to_sleeve(self, sends: list[Send], packet: Buffer, now: float, captured: bool) -> None:
        try:
            frames = plain_frames(packet)
        except VnetError:
            self.unsegmentable += 1
            return
        for send in sends:
            for frame in frames:
                self.datapath.send_frame(send, frame, now, captured)

    def take_inject(self) -> list[Buffer]:
        """Vnet header + frame, for the TAP as they are."""
        out, self._inject = self._inject, []
        return out
