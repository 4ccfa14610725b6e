"""A minimal ICMP echo client (the machine has no `ping` binary).

Run inside a namespace as `python -m weavenet.harness.ping [-c N] [-W SECS] [-s SIZE] DST`;
exits 0 if at least one reply arrived. Needs root (raw socket).
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import struct
import sys
import time

ICMP_ECHO_REQUEST = 8
ICMP_ECHO_REPLY = 0


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int, size: int) -> bytes:
    payload = bytes(i & 0xFF for i in range(size))
    header = struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, 0, ident, seq)
    csum = checksum(header + payload)
    return struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, csum, ident, seq) + payload


def _is_reply(packet: bytes, dst: str, ident: int, seq: int) -> bool:
    ihl = (packet[0] & 0x0F) * 4
    if len(packet) < ihl + 8 or socket.inet_ntoa(packet[12:16]) != dst:
        return False
    kind, _code, _csum, rid, rseq = struct.unpack("!BBHHH", packet[ihl : ihl + 8])
    return bool(kind == ICMP_ECHO_REPLY and rid == ident and rseq == seq)


def ping_once(dst: str, timeout: float = 2.0, seq: int = 1, size: int = 56) -> float | None:
    """Send one echo request to `dst`; return the RTT in seconds or None on timeout."""
    ident = os.getpid() & 0xFFFF
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        start = time.monotonic()
        sock.sendto(echo_request(ident, seq, size), (dst, 0))
        deadline = start + timeout
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([sock], [], [], left)
            if not ready:
                break
            packet = sock.recv(65535)
            if _is_reply(packet, dst, ident, seq):
                return time.monotonic() - start
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="weavenet.harness.ping")
    parser.add_argument("-c", "--count", type=int, default=1)
    parser.add_argument("-W", "--timeout", type=float, default=2.0)
    parser.add_argument("-s", "--size", type=int, default=56)
    parser.add_argument("dst")
    args = parser.parse_args(argv)
    dst = socket.gethostbyname(args.dst)
    replies = 0
    for seq in range(1, args.count + 1):
        rtt = ping_once(dst, args.timeout, seq, args.size)
        if rtt is None:
            print(f"no reply from {dst} seq={seq}")
        else:
            replies += 1
            print(f"reply from {dst} seq={seq} time={rtt * 1000:.3f} ms")
    return 0 if replies else 1


if __name__ == "__main__":
    sys.exit(main())
