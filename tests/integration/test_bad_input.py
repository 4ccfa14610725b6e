"""Bad input on the mesh port never kills the router (acceptance: robustness).

Two real `weaver` processes A and B run on loopback with A-B established. A raw TCP
socket sends A each kind of bad input. Each must close only that connection, log one
"connection shutting down due to error" line naming the attacker's address, bump
`weave_connection_terminations_total` by one, and leave A alive and A-B untouched.
"""

from __future__ import annotations

import os
import re
import socket
import struct
import time
from collections.abc import Iterator

import pytest

from tests.integration.routers import RouterProc, router_pair, wait_for

HEADER = b"weave\x02\x02"
HEADER_TIMEOUT = 10.0
SHUTDOWN = "connection shutting down due to error"


def garbage() -> bytes:
    data = os.urandom(64)
    return data if not data.startswith(b"w") else b"x" + data[1:]


Pair = tuple[RouterProc, RouterProc]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    with router_pair(tmp_path_factory.mktemp("bad-input")) as routers:
        yield routers


@pytest.fixture(scope="module")
def encrypted_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    extra = ["--password", "bad-input-secret"]
    with router_pair(tmp_path_factory.mktemp("bad-input-enc"), extra) as routers:
        yield routers


@pytest.fixture
def flood_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """A pair of its own: the flood drains the accept token bucket."""
    with router_pair(tmp_path_factory.mktemp("bad-input-flood")) as routers:
        yield routers


def read_until_closed(sock: socket.socket, timeout: float) -> float:
    """Drain ``sock`` until the peer closes it (EOF or reset); returns the seconds taken."""
    start = time.monotonic()
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - start


def shutdown_lines(router: RouterProc, local: tuple[str, int] | None = None) -> list[str]:
    lines = [line for line in router.log().splitlines() if SHUTDOWN in line]
    if local is None:
        return lines
    prefix = f"->[{local[0]}:{local[1]}]"
    return [line for line in lines if prefix in line]


class Attack:
    """One raw connection to A's mesh port; remembers A's state before it."""

    def __init__(self, pair: Pair) -> None:
        self.a, self.b = pair
        self.links_before = self.a.established()
        assert self.b.name in self.links_before
        self.terminations_before = self.a.terminations()
        self.lines_before = len(shutdown_lines(self.a))
        self.sock = socket.create_connection((self.a.host, self.a.port), timeout=5)
        self.local: tuple[str, int] = self.sock.getsockname()[:2]

    def close(self) -> None:
        self.sock.close()

    def check_aftermath(self) -> str:
        """Asserts the acceptance conditions; returns A's one log line for this socket."""
        a = self.a
        lines = wait_for(
            lambda: shutdown_lines(a, self.local), 5.0, f"a shutdown line for {self.local}"
        )
        wait_for(lambda: a.terminations() > self.terminations_before, 5.0, "terminations to go up")
        assert a.alive()
        assert len(lines) == 1, lines
        assert len(shutdown_lines(a)) == self.lines_before + 1, shutdown_lines(a)
        assert a.terminations() == self.terminations_before + 1
        assert a.established() == self.links_before  # same A-B connection, same address
        assert self.a.name in self.b.established()
        return lines[0]


@pytest.fixture
def attack(pair: Pair) -> Iterator[Attack]:
    att = Attack(pair)
    try:
        yield att
    finally:
        att.close()


@pytest.fixture
def encrypted_attack(encrypted_pair: Pair) -> Iterator[Attack]:
    att = Attack(encrypted_pair)
    try:
        yield att
    finally:
        att.close()


def test_garbage(attack: Attack) -> None:
    attack.sock.sendall(garbage())
    assert read_until_closed(attack.sock, 5.0) < 5.0
    line = attack.check_aftermath()
    assert "during handshake" in line


def test_wrong_protocol_version(attack: Attack) -> None:
    attack.sock.sendall(b"weave\x01\x01")
    assert read_until_closed(attack.sock, 5.0) < 5.0
    line = attack.check_aftermath()
    assert "during handshake" in line
    assert re.search(r"version", line, re.I), line


def test_oversized_frame(attack: Attack) -> None:
    attack.sock.sendall(HEADER + b"\x00" + struct.pack(">I", 0xFFFFFFFF))
    assert read_until_closed(attack.sock, 5.0) < 5.0
    attack.check_aftermath()


def test_truncated_handshake(attack: Attack) -> None:
    attack.sock.sendall(HEADER[:3])
    attack.sock.shutdown(socket.SHUT_WR)
    assert read_until_closed(attack.sock, 5.0) < 5.0
    line = attack.check_aftermath()
    assert "during handshake" in line


@pytest.mark.slow
def test_silent_peer_is_dropped_after_the_header_timeout(attack: Attack) -> None:
    took = read_until_closed(attack.sock, HEADER_TIMEOUT + 5.0)
    assert HEADER_TIMEOUT - 1.0 <= took < HEADER_TIMEOUT + 5.0, took
    line = attack.check_aftermath()
    assert "during handshake" in line


def test_plaintext_peer_to_an_encrypted_router(encrypted_attack: Attack) -> None:
    encrypted_attack.sock.sendall(HEADER + b"\x00")
    assert read_until_closed(encrypted_attack.sock, 5.0) < 5.0
    line = encrypted_attack.check_aftermath()
    assert "unencrypted" in line


def test_oversized_frame_after_a_public_key(encrypted_attack: Attack) -> None:
    key = os.urandom(32)
    encrypted_attack.sock.sendall(HEADER + b"\x01" + key + struct.pack(">I", 0xFFFFFFFF))
    assert read_until_closed(encrypted_attack.sock, 5.0) < 5.0
    encrypted_attack.check_aftermath()


def _garbage_connection(a: RouterProc) -> bool:
    """Connect, send garbage, close. False if A refused or reset us at once."""
    try:
        with socket.create_connection((a.host, a.port), timeout=5) as sock:
            sock.sendall(garbage())
            return True
    except OSError:
        return False


def test_a_flood_of_garbage_connections(flood_pair: Pair) -> None:
    a, b = flood_pair
    links_before = a.established()
    terminations_before = a.terminations()
    log_offset = len(a.log())
    sent = sum(_garbage_connection(a) for _ in range(200))

    # The accept token bucket (20 burst, one per 50 ms) may reset or delay connections
    # beyond the burst; every one the router did accept must end in exactly one shutdown
    # line and one termination. (30 s leaves room for a router that delays accepts.)
    def settled() -> int | None:
        new = a.log()[log_offset:]
        accepted, closed = new.count("connection accepted"), new.count(SHUTDOWN)
        if accepted and closed == accepted == a.terminations() - terminations_before:
            return accepted
        return None

    accepted = wait_for(settled, 30.0, "every accepted garbage connection to be closed")
    assert 10 <= accepted <= 200, (accepted, sent)
    assert a.alive()
    assert a.established() == links_before
    assert a.name in b.established()


def test_the_routers_survived_everything(pair: Pair, encrypted_pair: Pair) -> None:
    for router in (*pair, *encrypted_pair):
        assert router.alive()
        assert "Traceback" not in router.log()
