"""The weaver's IPAM flags: defaults, Go's fatal texts and determineQuorum."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from weavenet.core.errors import ConfigError
from weavenet.core.ipam.address import CIDR
from weavenet.core.ipam.allocator import Consensus, Observer, Seed
from weavenet.io.ipam_config import determine_quorum, parse_init_mode, parse_ipam_flags


def test_ipam_is_off_without_a_range() -> None:
    assert parse_ipam_flags("", "", "", 3) is None


@pytest.mark.parametrize(
    ("subnet", "init", "message"),
    [
        ("10.32.0.0/16", "", "--ipalloc-default-subnet specified without --ipalloc-range."),
        ("", "consensus=3", "--ipalloc-init specified without --ipalloc-range."),
    ],
)
def test_flags_without_a_range_are_fatal(subnet: str, init: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_ipam_flags("", subnet, init, 0)
    assert str(err.value) == message


def test_default_subnet_defaults_to_the_range_and_must_overlap_it() -> None:
    settings = parse_ipam_flags("10.32.0.0/12", "", "", 0)
    assert settings is not None
    assert settings.universe == settings.default_subnet == CIDR.parse("10.32.0.0/12")
    inside = parse_ipam_flags("10.32.0.0/12", "10.32.4.0/24", "", 0)
    assert inside is not None and str(inside.default_subnet) == "10.32.4.0/24"
    with pytest.raises(ConfigError) as err:
        parse_ipam_flags("10.32.0.0/12", "192.168.0.0/24", "", 0)
    assert str(err.value) == (
        "IP address allocation default subnet 192.168.0.0/24 does not overlap"
        " with allocation range 10.32.0.0/12"
    )


@pytest.mark.parametrize(
    ("range_text", "message"),
    [
        ("10.32.0.1/12", "--ipalloc-range: invalid subnet - bits after network prefix"),
        ("10.32.0.0/31", "--ipalloc-range: invalid subnet - smaller than minimum size 4"),
        ("banana", "--ipalloc-range: invalid CIDR address: banana"),
    ],
)
def test_bad_ranges(range_text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_ipam_flags(range_text, "", "", 0)


@pytest.mark.parametrize(
    ("init", "message"),
    [
        ("observer=1", "observer mode takes no parameter"),
        ("seed", "seed mode requires peer name list"),
        ("seed=zz:00", "bad seed parameter: invalid peer name"),
        ("consensus=x", 'bad consensus parameter: strconv.Atoi: parsing "x": invalid syntax'),
        ("paxos", "unknown mode: paxos"),
    ],
)
def test_bad_init_modes_have_go_texts(init: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_ipam_flags("10.32.0.0/12", "", init, 0)
    assert str(err.value).startswith("Unable to parse --ipalloc-init: " + message)


def test_init_modes() -> None:
    assert parse_init_mode("observer", 5) == Observer()
    assert parse_init_mode("seed=::1,aa:00:00:00:00:02", 0) == Seed((1, 0xAA0000000002))
    assert parse_init_mode("consensus=5", 0) == Consensus(3)
    assert parse_init_mode("consensus=4", 9) == Consensus(3)


def test_quorum_is_guessed_from_the_targets(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "weavenet.ipam")
    # Go: (targets + 1)/2 + 1 -- the targets may not include us
    assert [determine_quorum(0, n) for n in range(6)] == [1, 2, 2, 3, 3, 4]
    assert "Assuming quorum size of 4" in caplog.text
    assert parse_init_mode("", 2) == Consensus(2)
    assert parse_init_mode("consensus", 3) == Consensus(3)
    assert parse_init_mode("consensus=0", 1) == Consensus(2)  # 0 means: guess


def test_weaver_exits_with_one_line_on_bad_ipam_flags(tmp_path: object) -> None:
    argv = [sys.executable, "-m", "weavenet.daemon", "--ipalloc-init", "observer=1"]
    argv += ["--ipalloc-range", "10.32.0.0/12", "--state-dir", str(tmp_path)]
    argv += ["--http-addr", "127.0.0.1:0", "--host", "127.0.0.1", "--port", "1"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        "weaver: error: Unable to parse --ipalloc-init: observer mode takes no parameter"
    )
