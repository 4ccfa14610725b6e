"""Userspace TSO and checksum completion for frames the sleeve takes off a vnet TAP."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weavenet.core.overlay.vnet import (
    GSO_TCPV4,
    GSO_TCPV6,
    NEEDS_CSUM,
    VnetError,
    checksum,
    ones_sum,
    plain_frames,
)

MACS = bytes.fromhex("020000000002020000000001")
SRC4, DST4 = bytes([10, 2, 1, 1]), bytes([10, 2, 1, 2])
SRC6, DST6 = bytes(15) + b"\x01", bytes(15) + b"\x02"


def _tcp(payload_len: int, flags: int = 0x18 | 0x01) -> bytes:
    return struct.pack("!HHIIBBHHH", 40000, 5201, 1000, 7, 5 << 4, flags, 512, 0, 0)


def _v4(payload: bytes, flags: int = 0x19) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + len(payload), 99, 0x4000, 64, 6, 0,
                     SRC4, DST4)  # fmt: skip
    ip = ip[:10] + checksum(ip).to_bytes(2, "big") + ip[12:]
    return MACS + b"\x08\x00" + ip + _tcp(len(payload), flags) + payload


def _v6(payload: bytes) -> bytes:
    ip = struct.pack("!IHBB16s16s", 6 << 28, 20 + len(payload), 6, 64, SRC6, DST6)
    return MACS + b"\x86\xdd" + ip + _tcp(len(payload)) + payload


def _vnet(flags: int, gso_type: int, gso_size: int, start: int = 0, offset: int = 0) -> bytes:
    return struct.pack("<BBHHHH", flags, gso_type, 54, gso_size, start, offset)


def _tcp_ok(frame: bytes, v6: bool) -> bool:
    ip = frame[14:]
    if v6:
        tcp, pseudo = ip[40:], SRC6 + DST6 + len(ip[40:]).to_bytes(4, "big") + b"\x00\x00\x00\x06"
    else:
        assert checksum(ip[:20]) in (0, 0xFFFF), "IPv4 header checksum"
        tcp = ip[20 : struct.unpack("!H", ip[2:4])[0]]
        pseudo = SRC4 + DST4 + b"\x00\x06" + len(tcp).to_bytes(2, "big")
    return checksum(pseudo, tcp) in (0, 0xFFFF)


@pytest.mark.parametrize(("gso", "make", "v6"), [(GSO_TCPV4, _v4, False), (GSO_TCPV6, _v6, True)])
@given(payload=st.binary(min_size=1, max_size=9000), mss=st.integers(100, 1500))
def test_tso_segments_are_valid_tcp_and_carry_the_payload(
    gso: int, make: object, v6: bool, payload: bytes, mss: int
) -> None:
    assert callable(make)
    frames = plain_frames(_vnet(NEEDS_CSUM, gso, mss) + make(payload))
    assert len(frames) == -(-len(payload) // mss)
    hdr = 14 + (40 if v6 else 20) + 20
    assert b"".join(f[hdr:] for f in frames) == payload
    for i, f in enumerate(frames):
        assert _tcp_ok(f, v6), f"segment {i} has a bad checksum"
        tcp = f[hdr - 20 : hdr]
        assert struct.unpack("!I", tcp[4:8])[0] == 1000 + i * mss
        last = i == len(frames) - 1
        assert bool(tcp[13] & 0x09) is last  # FIN and PSH on the last segment only
        if not v6:
            assert struct.unpack("!H", f[18:20])[0] == 99 + i


def test_partial_checksum_is_completed() -> None:
    payload = b"marker" * 50
    frame = bytearray(_v4(payload, flags=0x18))
    tcp_len = 20 + len(payload)
    pseudo = ones_sum(SRC4 + DST4 + b"\x00\x06" + tcp_len.to_bytes(2, "big"))
    frame[14 + 20 + 16 : 14 + 20 + 18] = pseudo.to_bytes(2, "big")  # what the kernel leaves
    (out,) = plain_frames(_vnet(NEEDS_CSUM, 0, 0, 34, 16) + bytes(frame))
    assert _tcp_ok(out, v6=False) and out[54:] == payload
    (same,) = plain_frames(_vnet(0, 0, 0) + bytes(frame))
    assert same == bytes(frame)


@given(st.binary(max_size=300))
def test_random_packets_give_frames_or_our_error(data: bytes) -> None:
    with contextlib.suppress(VnetError):
        plain_frames(data)
