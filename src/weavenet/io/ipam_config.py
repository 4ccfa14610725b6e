"""The weaver's IPAM flags (``--ipalloc-range``, ``--ipalloc-default-subnet``,
``--ipalloc-init``) turned into what the allocator needs, with Go's fatal texts
(``prog/weaver/main.go``: ``ipamConfig.Enabled``, ``parseMode``, ``determineQuorum``).

One deviation: Go works the quorum out when the first election starts, from the targets
it has then; we work it out at start-up from the initial targets (the ones ``weave launch``
or ``--resume`` gave), so that the number is logged, and reported, from the start.
"""

from __future__ import annotations

import logging

import msgspec

from weavenet.core.errors import ConfigError
from weavenet.core.ipam.address import CIDR, parse_subnet
from weavenet.core.ipam.allocator import Consensus, InitMode, Observer, Seed
from weavenet.core.peername import parse_peer_name

log = logging.getLogger("weavenet.ipam")


class IpamSettings(msgspec.Struct, frozen=True):
    universe: CIDR
    default_subnet: CIDR
    init: InitMode


def parse_ipam_flags(
    range_text: str, subnet_text: str, init_text: str, initial_targets: int
) -> IpamSettings | None:
    """None when IPAM is disabled (no range); ConfigError on any bad combination."""
    if not range_text:
        if subnet_text:
            raise ConfigError("--ipalloc-default-subnet specified without --ipalloc-range.")
        if init_text:
            raise ConfigError("--ipalloc-init specified without --ipalloc-range.")
        return None
    universe = _subnet("--ipalloc-range", range_text)
    default_subnet = universe
    if subnet_text:
        default_subnet = _subnet("--ipalloc-default-subnet", subnet_text)
        if not universe.range().overlaps(default_subnet.range()):
            raise ConfigError(
                f"IP address allocation default subnet {default_subnet} does not overlap"
                f" with allocation range {universe}"
            )
    try:
        init = parse_init_mode(init_text, initial_targets)
    except ValueError as exc:
        raise ConfigError(f"Unable to parse --ipalloc-init: {exc}") from exc
    return IpamSettings(universe, default_subnet, init)


def _subnet(flag: str, text: str) -> CIDR:
    try:
        return parse_subnet(text)
    except ValueError as exc:
        raise ConfigError(f"{flag}: {exc}") from exc


def parse_init_mode(text: str, initial_targets: int) -> InitMode:
    """``consensus[=N]`` (the default), ``seed=NAME,...`` or ``observer``."""
    mode, has_param, param = text.partition("=")
    if mode in ("", "consensus"):
        peer_count = 0
        if has_param:
            try:
                peer_count = int(param, 10)
            except ValueError:
                raise ValueError(
                    f'bad consensus parameter: strconv.Atoi: parsing "{param}": invalid syntax'
                ) from None
        return Consensus(determine_quorum(peer_count, initial_targets))
    if mode == "seed":
        if not has_param:
            raise ValueError("seed mode requires peer name list")
        try:
            names = tuple(parse_peer_name(part) for part in param.split(","))
        except ValueError as exc:
            raise ValueError(f"bad seed parameter: {exc}") from None
        return Seed(names)
    if mode == "observer":
        if has_param:
            raise ValueError("observer mode takes no parameter")
        return Observer()
    raise ValueError(f"unknown mode: {mode}")


def determine_quorum(peer_count: int, initial_targets: int) -> int:
    """Go ``determineQuorum``: N/2+1 for ``consensus=N``, else guessed from the targets
    (which may or may not include us, so assume they do not)."""
    if peer_count > 0:
        return peer_count // 2 + 1
    quorum = (initial_targets + 1) // 2 + 1
    log.info("Assuming quorum size of %d", quorum)
    return quorum
