"""IPv4 helpers for path-MTU handling on the overlay (weave-wire §7.6).

A frame here is an untagged Ethernet frame (no FCS) whose EtherType is IPv4. An inner
packet with DF set that is too big for the path gets an ICMP "fragmentation needed"
(``makeICMPFragNeeded``) injected back to its sender; one without DF that must take the
DF path is fragmented by us (Linux-style: every fragment keeps the header length, with
options not meant to be copied replaced by NOPs after the first fragment).
"""

from __future__ import annotations

ETH_LEN = 14
IP_MIN_HEADER = 20
ETHERTYPE_IPV4 = b"\x08\x00"
PROTO_ICMP = 1
ICMP_DEST_UNREACH = 3
ICMP_FRAG_NEEDED = 4
_ICMP_ERRORS = frozenset({3, 4, 5, 11, 12})  # never answer an ICMP error with one
_FLAG_DF = 0x4000
_FLAG_MF = 0x2000
_OFFSET_MASK = 0x1FFF
_OPT_EOL, _OPT_NOP, _OPT_COPIED = 0, 1, 0x80


def internet_checksum(data: bytes | bytearray | memoryview) -> int:
    """RFC 1071 checksum of ``data`` (odd lengths padded with a zero byte).

    The one's-complement sum of 16-bit words is congruent to the whole buffer read as
    one big-endian integer modulo 0xFFFF (2**16 == 1 mod 0xFFFF), so a single C-level
    ``int.from_bytes`` and ``%`` replace the word loop. The sum is 0 only for all-zero
    input, otherwise in 1..0xFFFF.
    """
    if len(data) & 1:
        data = bytes(data) + b"\x00"
    value = int.from_bytes(data, "big")
    total = value % 0xFFFF
    if total == 0 and value:
        total = 0xFFFF
    return ~total & 0xFFFF


def ipv4_checksum(header: bytes | bytearray | memoryview) -> int:
    """Header checksum; compute with the checksum field zeroed (a valid header gives 0)."""
    return internet_checksum(header)


def _header_len(frame: bytes) -> int:
    """IPv4 header length in bytes, 0 if the frame's IPv4 header is unusable."""
    if len(frame) < ETH_LEN + IP_MIN_HEADER or frame[12:14] != ETHERTYPE_IPV4:
        return 0
    first = frame[ETH_LEN]
    hlen = (first & 0x0F) * 4
    if first >> 4 != 4 or hlen < IP_MIN_HEADER or len(frame) < ETH_LEN + hlen:
        return 0
    return hlen


def is_ipv4(frame: bytes) -> bool:
    """EtherType IPv4 with a well-formed (version 4, complete) IP header."""
    return _header_len(frame) != 0


def ipv4_df(frame: bytes) -> bool:
    """An IPv4 frame with the Don't Fragment bit set."""
    return _header_len(frame) != 0 and bool(frame[ETH_LEN + 6] & 0x40)


def _must_not_answer(frame: bytes, hlen: int) -> bool:
    """RFC 1122 §3.2.2: no ICMP error about a link/IP broadcast or multicast, a
    non-initial fragment, or an ICMP error message."""
    ip = frame[ETH_LEN:]
    if frame[0] & 1 or ip[16] >= 224 or ip[12] >= 224:
        return True
    if int.from_bytes(ip[6:8], "big") & _OFFSET_MASK:
        return True
    return ip[9] == PROTO_ICMP and len(ip) > hlen and ip[hlen] in _ICMP_ERRORS


def icmp_frag_needed(frame: bytes, mtu: int) -> bytes | None:
    """``makeICMPFragNeeded``: an ICMP type 3 code 4 (next-hop MTU ``mtu``) frame from the
    inner destination back to the inner source, quoting the IP header + 8 bytes.

    As in Go: MACs swapped, IP TOS copied, ID 0, no flags, TTL 64, no options. None when
    the input is not IPv4 or must not be answered (see :func:`_must_not_answer`).
    """
    if not 0 <= mtu <= 0xFFFF:
        raise ValueError(f"MTU {mtu} does not fit the ICMP next-hop MTU field")
    hlen = _header_len(frame)
    if not hlen or _must_not_answer(frame, hlen):
        return None
    ip = frame[ETH_LEN:]
    total = min(int.from_bytes(ip[2:4], "big"), len(ip))
    quote = ip[: max(min(hlen + 8, total), hlen)]
    icmp = bytearray(b"\x03\x04\x00\x00\x00\x00" + mtu.to_bytes(2, "big") + quote)
    icmp[2:4] = internet_checksum(icmp).to_bytes(2, "big")
    header = bytearray(
        b"\x45"
        + ip[1:2]
        + (IP_MIN_HEADER + len(icmp)).to_bytes(2, "big")
        + b"\x00\x00\x00\x00\x40\x01\x00\x00"
        + ip[16:20]
        + ip[12:16]
    )
    header[10:12] = ipv4_checksum(header).to_bytes(2, "big")
    return frame[6:12] + frame[0:6] + ETHERTYPE_IPV4 + bytes(header) + bytes(icmp)


def _later_options(options: bytes) -> bytes:
    """Options for fragments after the first: non-copied ones become NOPs (same length)."""
    out = bytearray(options)
    i = 0
    while i < len(out):
        kind = out[i]
        if kind == _OPT_EOL:
            break
        if kind == _OPT_NOP:
            i += 1
            continue
        size = out[i + 1] if i + 1 < len(out) else 0
        if size < 2:  # malformed: blank the rest
            out[i:] = bytes([_OPT_NOP]) * (len(out) - i)
            break
        if not kind & _OPT_COPIED:
            out[i : i + size] = bytes([_OPT_NOP]) * len(out[i : i + size])
        i += size
    return bytes(out)


def _fragment_header(
    eth_ip: bytes, hlen: int, size: int, flags_offset: int, options: bytes
) -> bytes:
    """Ethernet header + IP header for one fragment carrying ``size`` payload bytes."""
    ip = eth_ip[ETH_LEN:]
    header = bytearray(
        ip[0:2]
        + (hlen + size).to_bytes(2, "big")
        + ip[4:6]
        + flags_offset.to_bytes(2, "big")
        + ip[8:10]
        + b"\x00\x00"
        + ip[12:20]
        + options
    )
    header[10:12] = ipv4_checksum(header).to_bytes(2, "big")
    return eth_ip[:ETH_LEN] + bytes(header)


def fragment_ipv4(frame: bytes, mtu: int) -> list[bytes]:
    """Split a non-DF IPv4 frame so each fragment's IP packet is at most ``mtu`` bytes.

    Payload chunks are multiples of 8 bytes (except the last); offsets continue those of
    an already-fragmented input and the last piece keeps the input's MF flag. A frame
    that already fits is returned as is. Raises ValueError for non-IPv4 or malformed
    frames, DF set, or an ``mtu`` too small for the header plus 8 bytes.
    """
    hlen = _header_len(frame)
    if not hlen:
        raise ValueError("not an IPv4 frame")
    total = int.from_bytes(frame[ETH_LEN + 2 : ETH_LEN + 4], "big")
    if total < hlen or ETH_LEN + total > len(frame):
        raise ValueError(f"bad IPv4 total length {total}")
    if total <= mtu:
        return [frame]
    flags_offset = int.from_bytes(frame[ETH_LEN + 6 : ETH_LEN + 8], "big")
    if flags_offset & _FLAG_DF:
        raise ValueError("cannot fragment: DF set")
    chunk = (mtu - hlen) & ~7
    if chunk <= 0:
        raise ValueError(f"MTU {mtu} too small for a {hlen}-byte IPv4 header")
    base, last_mf = flags_offset & _OFFSET_MASK, flags_offset & _FLAG_MF
    keep = flags_offset & ~(_FLAG_MF | _OFFSET_MASK)
    payload = frame[ETH_LEN + hlen : ETH_LEN + total]
    if base + (len(payload) - 1) // 8 > _OFFSET_MASK:
        raise ValueError("fragment offset overflow")
    eth_ip = frame[: ETH_LEN + IP_MIN_HEADER]
    options = frame[ETH_LEN + IP_MIN_HEADER : ETH_LEN + hlen]
    later = _later_options(options) if options else options
    out: list[bytes] = []
    for start in range(0, len(payload), chunk):
        piece = payload[start : start + chunk]
        mf = last_mf if start + chunk >= len(payload) else _FLAG_MF
        opts = options if start == 0 else later
        head = _fragment_header(eth_ip, hlen, len(piece), keep | mf | (base + start // 8), opts)
        out.append(head + piece)
    return out
