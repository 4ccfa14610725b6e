"""IPv4 addresses, ranges and CIDR blocks as Weave's ``net/address`` package has them.

Addresses are plain ints (uint32).  A :class:`Range` is half-open ``[start, end)``; its
text is Go's ``"first-last"`` form.  Go does this arithmetic in uint32, so anything that
can wrap (a range ending at the top of the address space) is masked to 32 bits.
"""

from __future__ import annotations

import msgspec

Address = int  # IPv4 as uint32

ADDRESS_MASK = 0xFFFFFFFF
MIN_SUBNET_SIZE = 4  # Go's MinSubnetSize: network and broadcast are excluded, 2 is too small


def format_address(addr: int) -> str:
    """``0x0a200001`` -> ``"10.32.0.1"`` (Go's Address.String)."""
    addr &= ADDRESS_MASK
    return f"{addr >> 24}.{(addr >> 16) & 0xFF}.{(addr >> 8) & 0xFF}.{addr & 0xFF}"


def parse_address(text: str) -> int:
    """``"10.32.0.1"`` -> ``0x0a200001``; ValueError ``invalid IP Address: <text>`` otherwise."""
    value = _parse_dotted(text)
    if value is None:
        raise ValueError(f"invalid IP Address: {text}")
    return value


def _parse_dotted(text: str) -> int | None:
    parts = text.split(".")
    if len(parts) != 4:
        return None
    value = 0
    for part in parts:
        if not part.isascii() or not part.isdigit() or len(part) > 3:
            return None
        if len(part) > 1 and part[0] == "0":
            return None  # Go (like Python's ipaddress) rejects leading zeros
        byte = int(part)
        if byte > 255:
            return None
        value = (value << 8) | byte
    return value


class Range(msgspec.Struct, frozen=True, order=True):
    """Addresses ``[start, end)``; ``start <= end`` (not checked: ranges are made in hot paths)."""

    start: int
    end: int

    def size(self) -> int:
        return self.end - self.start

    def contains(self, addr: int) -> bool:
        return self.start <= addr < self.end

    def overlaps(self, other: Range) -> bool:
        return not (self.start >= other.end or self.end <= other.start)

    def intersect(self, other: Range) -> Range | None:
        """The addresses in both ranges, or None if they have none in common."""
        start, end = max(self.start, other.start), min(self.end, other.end)
        return Range(start, end) if start < end else None

    def __str__(self) -> str:
        return f"{format_address(self.start)}-{format_address(self.end - 1)}"

    def as_cidr_string(self) -> str:
        """``"10.32.0.0/12"`` when the size is a power of two, else the ``first-last`` form.

        As Go, only the size is checked, not the alignment of the start.
        """
        size = self.size()
        if size > 1 and size & (size - 1):
            return str(self)
        return str(CIDR(self.start & ADDRESS_MASK, 32 - max(size.bit_length() - 1, 0)))

    def biggest_cidr_range(self) -> Range:
        """The biggest CIDR-aligned block inside this range (Go's BiggestCIDRRange)."""
        size = self.size()
        msb = 1 << (size.bit_length() - 1) if size > 0 else 0
        mask = (msb - 1) & ADDRESS_MASK
        masked_size = size & mask
        masked_start = self.start & mask
        if masked_start == 0:
            return Range(self.start, self.start + msb)
        if msb - masked_start <= masked_size:
            begin = self.start + msb - masked_start
            return Range(begin, begin + msb)
        half = msb // 2
        if half >= masked_start:
            begin = self.start + half - masked_start
            return Range(begin, begin + half)
        begin = self.start + msb - masked_start
        return Range(begin, begin + half)

    def cidrs(self) -> list[CIDR]:
        """CIDR-aligned blocks that exactly cover this range, in order (Go's Range.CIDRs)."""
        result: list[CIDR] = []
        start, end = self.start, self.end
        while start < end:
            # largest block aligned at start that does not run past end
            align = (start & -start).bit_length() - 1 if start else 32
            bits = min(align, (end - start).bit_length() - 1)
            result.append(CIDR(start, 32 - bits))
            start += 1 << bits
        return result


class CIDR(msgspec.Struct, frozen=True):
    """An address with a prefix length; the address may have host bits set (``10.32.0.1/12``)."""

    addr: int
    prefix_len: int

    def __post_init__(self) -> None:
        if not 0 <= self.addr <= ADDRESS_MASK:
            raise ValueError(f"invalid IPv4 address {self.addr}")
        if not 0 <= self.prefix_len <= 32:
            raise ValueError(f"invalid prefix length {self.prefix_len}: want 0 to 32")

    @classmethod
    def parse(cls, text: str) -> CIDR:
        """``"10.32.0.1/12"``; ValueError with Go's text (``invalid CIDR address: <text>``)."""
        addr_text, slash, prefix_text = text.partition("/")
        addr = _parse_dotted(addr_text)
        if addr is None and ":" in addr_text and slash:
            raise ValueError(f"invalid Non-IPv4 address not supported: {text}")
        valid_prefix = prefix_text.isascii() and prefix_text.isdigit() and len(prefix_text) <= 3
        if addr is None or not slash or not valid_prefix or int(prefix_text) > 32:
            raise ValueError(f"invalid CIDR address: {text}")
        return cls(addr, int(prefix_text))

    def __str__(self) -> str:
        return f"{format_address(self.addr)}/{self.prefix_len}"

    def size(self) -> int:
        return 1 << (32 - self.prefix_len)

    def start(self) -> int:
        return self.addr

    def end(self) -> int:
        return self.addr + self.size()

    def is_subnet(self) -> bool:
        """True when no bits after the prefix are set."""
        return self.addr & (self.size() - 1) == 0

    def range(self) -> Range:
        """The whole block, starting at ``addr`` as Go's CIDR.Range (callers pass subnets)."""
        return Range(self.addr, self.addr + self.size())

    def host_range(self) -> Range:
        """The block without its first and last address (RFC 1122), as Go's HostRange."""
        return Range(self.addr + 1, self.addr + self.size() - 1)


def make_cidr(subnet: CIDR, addr: int) -> CIDR:
    """``addr`` with the prefix length of ``subnet`` (Go's MakeCIDR)."""
    return CIDR(addr, subnet.prefix_len)


def parse_subnet(text: str) -> CIDR:
    """Parse a CIDR that must be a subnet of at least MIN_SUBNET_SIZE addresses.

    ValueError with Go's ParseCIDRSubnet texts; as Go, the size check is reported when both fail.
    """
    cidr = CIDR.parse(text)
    if cidr.size() < MIN_SUBNET_SIZE:
        raise ValueError(f"invalid subnet - smaller than minimum size {MIN_SUBNET_SIZE}: {text}")
    if not cidr.is_subnet():
        raise ValueError(f"invalid subnet - bits after network prefix are not all zero: {text}")
    return cidr
