"""``virtio_net_hdr`` frames from an ``IFF_VNET_HDR`` TAP, made fit for the
Weave-compatible sleeve, sans-IO.

With offloads on (``TUNSETOFFLOAD``), the bridge hands the TAP what a NIC would get: TCP
superframes up to ~64 KB for the far end to segment (``gso_type`` TCPv4/TCPv6, segment
size ``gso_size``) and frames whose TCP/UDP checksum is left for the NIC to finish
(``VIRTIO_NET_HDR_F_NEEDS_CSUM``: the field holds the pseudo-header sum, the sum runs from
``csum_start``). The fast sleeve carries both as they are (the peer's kernel finishes
them); the sleeve speaks Weave's format to peers that know nothing of this, so for it
:func:`plain_frames` segments superframes and completes checksums, as a NIC would.

Checksums use the identity ``sum of 16-bit words (ones' complement) == value mod 0xFFFF``
of the bytes read as one big-endian integer: one C-speed pass per segment.
"""

from __future__ import annotations

import struct

from weavenet.core.overlay.fast_sleeve_codec import Buffer

VNET = 10  # sizeof(struct virtio_net_hdr) without mergeable buffers
ZERO_VNET = bytes(VNET)
NEEDS_CSUM = 1
GSO_NONE, GSO_TCPV4, GSO_TCPV6 = 0, 1, 4
GSO_ECN = 0x80
_VNET = struct.Struct("<BBHHHH")
_FIN, _PSH, _CWR = 0x01, 0x08, 0x80
ETH = 14


class VnetError(ValueError):
    """A superframe we cannot segment (the sleeve then drops it and counts it)."""


def ones_sum(data: Buffer) -> int:
    """The ones' complement sum of ``data`` (even length, or padded with a zero byte)."""
    value = int.from_bytes(data, "big")
    if len(data) & 1:
        value <<= 8
    return value % 0xFFFF


def checksum(*parts: Buffer) -> int:
    """The Internet checksum of the concatenation (every part but the last of even size)."""
    return ~(sum(ones_sum(p) for p in parts) % 0xFFFF) & 0xFFFF


def complete_checksum(frame: Buffer, start: int, offset: int) -> bytes:
    """Finish a NEEDS_CSUM frame: the field at ``start + offset`` holds the pseudo sum."""
    out = bytearray(frame)
    where = start + offset
    if not ETH <= start < where + 2 <= len(out):
        raise VnetError(f"checksum at {start}+{offset} outside a {len(out)}-byte frame")
    out[where : where + 2] = checksum(memoryview(out)[start:]).to_bytes(2, "big")
    return bytes(out)


def plain_frames(packet: Buffer) -> list[bytes]:
    """The frames a NIC would put on the wire for ``packet`` (vnet header + frame)."""
    if len(packet) < VNET + ETH:
        raise VnetError(f"TAP packet too short: {len(packet)} bytes")
    flags, gso_type, _hdr_len, gso_size, csum_start, csum_offset = _VNET.unpack_from(packet)
    frame = memoryview(packet)[VNET:]
    kind = gso_type & ~GSO_ECN
    if kind == GSO_NONE:
        if flags & NEEDS_CSUM:
            return [complete_checksum(frame, csum_start, csum_offset)]
        return [bytes(frame)]
    if kind in (GSO_TCPV4, GSO_TCPV6) and gso_size > 0:
        return segment_tcp(frame, gso_size, v6=kind == GSO_TCPV6)
    raise VnetError(f"cannot segment GSO type {gso_type} in userspace")


def _tcp_offsets(frame: Buffer, v6: bool) -> tuple[int, int]:
    """(where TCP starts, where the payload starts) in an untagged Ethernet frame."""
    if len(frame) < ETH + (40 if v6 else 20) + 20:
        raise VnetError(f"superframe too short: {len(frame)} bytes")
    if v6:
        if frame[12:14] != b"\x86\xdd" or frame[ETH + 6] != 6:
            raise VnetError("TCPv6 superframe without a plain IPv6/TCP header")
        tcp = ETH + 40
    else:
        if frame[12:14] != b"\x08\x00" or frame[ETH + 9] != 6:
            raise VnetError("TCPv4 superframe without a plain IPv4/TCP header")
        tcp = ETH + (frame[ETH] & 0x0F) * 4
    payload = tcp + (frame[tcp + 12] >> 4) * 4
    if payload > len(frame):
        raise VnetError("superframe headers run past its end")
    return tcp, payload


def segment_tcp(frame: Buffer, gso_size: int, v6: bool) -> list[bytes]:
    """TSO in userspace: one frame per ``gso_size`` bytes of TCP payload."""
    tcp, start = _tcp_offsets(frame, v6)
    head = bytes(frame[:start])
    data = memoryview(frame)[start:]
    seq = int.from_bytes(head[tcp + 4 : tcp + 8], "big")
    flags, ip_id = head[tcp + 13], int.from_bytes(head[ETH + 4 : ETH + 6], "big")
    addrs = head[ETH + 8 : ETH + 40] if v6 else head[ETH + 12 : ETH + 20]
    out = []
    for i, off in enumerate(range(0, max(len(data), 1), gso_size)):
        piece = data[off : off + gso_size]
        last = off + gso_size >= len(data)
        h = bytearray(head)
        tcp_len = start - tcp + len(piece)
        if v6:
            h[ETH + 4 : ETH + 6] = tcp_len.to_bytes(2, "big")
            pseudo = addrs + tcp_len.to_bytes(4, "big") + b"\x00\x00\x00\x06"
        else:
            h[ETH + 2 : ETH + 4] = (tcp - ETH + tcp_len).to_bytes(2, "big")
            h[ETH + 4 : ETH + 6] = ((ip_id + i) & 0xFFFF).to_bytes(2, "big")
            h[ETH + 10 : ETH + 12] = b"\x00\x00"
            h[ETH + 10 : ETH + 12] = checksum(h[ETH:tcp]).to_bytes(2, "big")
            pseudo = addrs + b"\x00\x06" + tcp_len.to_bytes(2, "big")
        h[tcp + 4 : tcp + 8] = ((seq + off) & 0xFFFFFFFF).to_bytes(4, "big")
        h[tcp + 13] = flags & ~((0 if last else _FIN | _PSH) | (_CWR if i else 0))
        h[tcp + 16 : tcp + 18] = b"\x00\x00"
        h[tcp + 16 : tcp + 18] = checksum(pseudo, h[tcp:], piece).to_bytes(2, "big")
        out.append(bytes(h) + piece)
    return out
