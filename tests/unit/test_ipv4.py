"""IPv4 helpers for PMTU handling (§7.6): checksum, ICMP frag-needed, fragmentation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weavenet.core.overlay.ipv4 import (
    fragment_ipv4,
    icmp_frag_needed,
    internet_checksum,
    ipv4_checksum,
    ipv4_df,
    is_ipv4,
)

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")
IP_A = bytes([10, 32, 0, 1])
IP_B = bytes([10, 32, 0, 2])


def naive_checksum(data: bytes) -> int:
    """RFC 1071 reference: add 16-bit words with end-around carry."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ip_frame(
    payload: bytes,
    *,
    flags_offset: int = 0,
    proto: int = 17,
    options: bytes = b"",
    ident: int = 0x1234,
    src_mac: bytes = MAC_A,
    dst_mac: bytes = MAC_B,
    tos: int = 0,
) -> bytes:
    hlen = 20 + len(options)
    header = bytearray(
        bytes([0x40 | hlen // 4, tos])
        + (hlen + len(payload)).to_bytes(2, "big")
        + ident.to_bytes(2, "big")
        + flags_offset.to_bytes(2, "big")
        + bytes([64, proto, 0, 0])
        + IP_A
        + IP_B
        + options
    )
    header[10:12] = naive_checksum(bytes(header)).to_bytes(2, "big")
    return dst_mac + src_mac + b"\x08\x00" + bytes(header) + payload


# --- checksum -----------------------------------------------------------------------


def test_checksum_known_vectors() -> None:
    # Classic example header (checksum field zeroed): 0xb861.
    header = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    assert ipv4_checksum(header) == 0xB861
    # RFC 1071 §3 example words 0001 f203 f4f5 f6f7: sum 0xddf2, checksum 0x220d.
    assert internet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D
    # A header carrying its correct checksum verifies to 0.
    with_sum = header[:10] + b"\xb8\x61" + header[12:]
    assert ipv4_checksum(with_sum) == 0


def test_checksum_edge_cases() -> None:
    assert internet_checksum(b"") == 0xFFFF
    assert internet_checksum(bytes(20)) == 0xFFFF
    assert internet_checksum(b"\xff" * 20) == 0
    assert internet_checksum(b"\x01") == naive_checksum(b"\x01") == 0xFEFF


@given(st.binary(max_size=1600))
def test_checksum_matches_word_by_word_reference(data: bytes) -> None:
    assert internet_checksum(data) == naive_checksum(data)


# --- classification -----------------------------------------------------------------


def test_is_ipv4_and_df() -> None:
    frame = ip_frame(b"x" * 10)
    assert is_ipv4(frame) and not ipv4_df(frame)
    assert ipv4_df(ip_frame(b"", flags_offset=0x4000))
    arp = MAC_B + MAC_A + b"\x08\x06" + bytes(28)
    assert not is_ipv4(arp) and not ipv4_df(arp)
    assert not is_ipv4(frame[:30])  # truncated header
    v6_in_v4_type = frame[:14] + b"\x65" + frame[15:]
    assert not is_ipv4(v6_in_v4_type)
    bad_ihl = frame[:14] + b"\x44" + frame[15:]
    assert not is_ipv4(bad_ihl)


# --- ICMP fragmentation needed ------------------------------------------------------


def test_icmp_frag_needed_hand_checked_packet() -> None:
    # UDP 10.32.0.1:1234 -> 10.32.0.2:80, 1500 bytes, DF, id 0x1234, TTL 64.
    udp = bytes.fromhex("04d2005005c80000") + bytes(1472)
    frame = ip_frame(udp, flags_offset=0x4000)
    assert frame[14:34].hex() == "450005dc123440004011" + "0e9b" + "0a2000010a200002"
    reply = icmp_frag_needed(frame, 1400)
    # Checksums worked out by hand (RFC 1071 one's-complement sums):
    #   IP:   4500+0038+4001+0a20+0002+0a20+0001 = 997c -> 6683
    #   ICMP: 0304+0578 (+ ffff for the quoted, valid IP header) +04d2+0050+05c8 = 1366 -> ec99
    expected = bytes.fromhex(
        "020000000001" "020000000002" "0800"
        "4500 0038 0000 0000 4001 6683 0a20 0002 0a20 0001".replace(" ", "")
        + "0304 ec99 0000 0578".replace(" ", "")
        + "4500 05dc 1234 4000 4011 0e9b 0a20 0001 0a20 0002".replace(" ", "")
        + "04d2 0050 05c8 0000".replace(" ", "")
    )  # fmt: skip
    assert reply == expected


def test_icmp_frag_needed_fields_with_options_and_tos() -> None:
    options = bytes.fromhex("94040000")  # router alert (copied), 4 bytes -> IHL 6
    frame = ip_frame(bytes(range(100)), flags_offset=0x4000, options=options, tos=0xB8)
    reply = icmp_frag_needed(frame, 1376)
    assert reply is not None
    assert reply[0:6] == MAC_A and reply[6:12] == MAC_B and reply[12:14] == b"\x08\x00"
    ip, icmp = reply[14:34], reply[34:]
    assert ip[0] == 0x45 and ip[1] == 0xB8
    assert int.from_bytes(ip[2:4], "big") == 20 + len(icmp) == 20 + 8 + 24 + 8
    assert ip[4:8] == bytes(4) and ip[8] == 64 and ip[9] == 1
    assert ip[12:16] == IP_B and ip[16:20] == IP_A
    assert naive_checksum(ip) == 0
    assert icmp[0] == 3 and icmp[1] == 4 and icmp[4:6] == b"\x00\x00"
    assert int.from_bytes(icmp[6:8], "big") == 1376
    assert icmp[8:] == frame[14 : 14 + 24 + 8]
    assert naive_checksum(icmp) == 0


def test_icmp_frag_needed_short_packet_quotes_what_there_is() -> None:
    frame = ip_frame(b"abc", flags_offset=0x4000) + bytes(20)  # Ethernet padding
    reply = icmp_frag_needed(frame, 552)
    assert reply is not None
    assert reply[34 + 8 :] == frame[14 : 14 + 23]
    assert naive_checksum(reply[14:34]) == 0 and naive_checksum(reply[34:]) == 0


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(MAC_B + MAC_A + b"\x08\x06" + bytes(28), id="arp"),
        pytest.param(ip_frame(b"", flags_offset=0x4000)[:25], id="truncated"),
        pytest.param(ip_frame(bytes([3, 4]) + bytes(30), proto=1), id="icmp-unreachable"),
        pytest.param(ip_frame(bytes([11, 0]) + bytes(30), proto=1), id="icmp-time-exceeded"),
        pytest.param(ip_frame(bytes(40), flags_offset=0x4000 | 5), id="non-first-fragment"),
        pytest.param(ip_frame(bytes(40), dst_mac=b"\xff" * 6), id="link-broadcast"),
    ],
)
def test_icmp_frag_needed_refuses(frame: bytes) -> None:
    assert icmp_frag_needed(frame, 1400) is None


def test_icmp_frag_needed_answers_icmp_echo() -> None:
    echo = ip_frame(bytes([8, 0]) + bytes(1000), proto=1, flags_offset=0x4000)
    assert icmp_frag_needed(echo, 576) is not None


def test_icmp_frag_needed_rejects_unencodable_mtu() -> None:
    with pytest.raises(ValueError):
        icmp_frag_needed(ip_frame(bytes(100)), 70000)


# --- fragmentation ------------------------------------------------------------------


def parse(fragment: bytes) -> tuple[int, int, bool, bytes, bytes]:
    """(ip total length, byte offset, MF, header, payload) of one fragment frame."""
    hlen = (fragment[14] & 15) * 4
    total = int.from_bytes(fragment[16:18], "big")
    flags_offset = int.from_bytes(fragment[20:22], "big")
    return (
        total,
        (flags_offset & 0x1FFF) * 8,
        bool(flags_offset & 0x2000),
        fragment[14 : 14 + hlen],
        fragment[14 + hlen : 14 + total],
    )


def check_fragments(frame: bytes, fragments: list[bytes], mtu: int, base: int = 0) -> None:
    orig_hlen = (frame[14] & 15) * 4
    payload = frame[14 + orig_hlen :]
    assert len(fragments) >= 2
    assembled = b""
    for i, fragment in enumerate(fragments):
        total, offset, more, header, data = parse(fragment)
        assert len(fragment) == 14 + total <= 14 + mtu
        assert fragment[:14] == frame[:14]
        assert len(header) == orig_hlen
        assert naive_checksum(header) == 0
        assert header[4:6] == frame[18:20]  # identification
        assert header[8:10] == frame[22:24] and header[12:20] == frame[26:34]
        assert not header[6] & 0x40
        assert offset % 8 == 0 and offset == base + len(assembled)
        last = i == len(fragments) - 1
        assert more is not last
        if not last:
            assert len(data) % 8 == 0
        assembled += data
    assert assembled == payload


@settings(max_examples=200, deadline=None)
@given(size=st.integers(0, 20000), mtu=st.integers(68, 9000), seed=st.binary(min_size=1))
def test_fragments_reassemble(size: int, mtu: int, seed: bytes) -> None:
    payload = (seed * (size // len(seed) + 1))[:size]
    frame = ip_frame(payload)
    fragments = fragment_ipv4(frame, mtu)
    if 20 + size <= mtu:
        assert fragments == [frame]
    else:
        check_fragments(frame, fragments, mtu)


def test_fragment_example_1500_into_576() -> None:
    frame = ip_frame(bytes(range(256)) * 5 + bytes(200))  # 1480 payload bytes
    fragments = fragment_ipv4(frame, 576)
    assert [parse(f)[0] for f in fragments] == [572, 572, 396]
    assert [parse(f)[1] for f in fragments] == [0, 552, 1104]
    check_fragments(frame, fragments, 576)


def test_refragmenting_a_fragment_keeps_offsets_and_mf() -> None:
    middle = ip_frame(bytes(range(200)) * 5, flags_offset=0x2000 | 100)  # MF, offset 800
    fragments = fragment_ipv4(middle, 300)
    offsets = [parse(f)[1] for f in fragments]
    assert offsets[0] == 800 and all(parse(f)[2] for f in fragments)  # all MF
    last = ip_frame(bytes(1000), flags_offset=100)  # final fragment of the original
    check_fragments(last, fragment_ipv4(last, 300), 300, base=800)


def test_options_copied_flag_respected_after_first_fragment() -> None:
    # record route (type 7, not copied; one slot), a NOP, router alert (0x94, copied).
    options = bytes.fromhex("07070400000000 01 94040000")
    frame = ip_frame(bytes(500), options=options)
    fragments = fragment_ipv4(frame, 200)
    check_fragments(frame, fragments, 200)
    assert parse(fragments[0])[3][20:] == options
    for later in fragments[1:]:
        assert parse(later)[3][20:] == b"\x01" * 8 + bytes.fromhex("94040000")


def test_fragment_ignores_ethernet_padding() -> None:
    frame = ip_frame(bytes(100)) + bytes(30)
    fragments = fragment_ipv4(frame, 68)
    assert b"".join(parse(f)[4] for f in fragments) == bytes(100)


@pytest.mark.parametrize(
    ("frame", "mtu"),
    [
        pytest.param(ip_frame(bytes(1000), flags_offset=0x4000), 500, id="df"),
        pytest.param(MAC_B + MAC_A + b"\x08\x06" + bytes(1000), 500, id="not-ipv4"),
        pytest.param(ip_frame(bytes(1000)), 27, id="mtu-too-small"),
        pytest.param(ip_frame(bytes(1000))[:500], 300, id="truncated"),
    ],
)
def test_fragment_rejects(frame: bytes, mtu: int) -> None:
    with pytest.raises(ValueError):
        fragment_ipv4(frame, mtu)


def test_df_frame_that_fits_is_returned_unchanged() -> None:
    frame = ip_frame(bytes(100), flags_offset=0x4000)
    assert fragment_ipv4(frame, 1500) == [frame]


@pytest.mark.parametrize(
    ("options", "later"),
    [
        pytest.param(bytes(4), bytes(4), id="eol-padding-kept"),
        pytest.param(b"\x07\x00\x00\x00", b"\x01" * 4, id="malformed-length-blanked"),
        pytest.param(b"\x83\x03\x04\x00", b"\x83\x03\x04\x00", id="copied-kept"),
    ],
)
def test_later_fragment_options(options: bytes, later: bytes) -> None:
    fragments = fragment_ipv4(ip_frame(bytes(300), options=options), 100)
    assert parse(fragments[0])[3][20:] == options
    assert {parse(f)[3][20:] for f in fragments[1:]} == {later}
