"""bench/machine_ref.py: the machine-speed figures printed beside every scale run."""

from __future__ import annotations

import pytest

from tests.unit.bench_modules import load_bench

machine_ref = load_bench("machine_ref")


def test_import_floor_spreads_n_minus_one_imports_over_the_cores() -> None:
    machine = {"loop_cpu_s": 0.5, "import_cpu_s": 0.6, "cores": 2.0}
    assert machine_ref.import_floor_s(machine, 50) == pytest.approx(49 * 0.6 / 2)
    assert "N=50 14.7 s" in machine_ref.describe(machine, [50])


def test_the_import_run_really_imports_a_router() -> None:
    """The reference import must cost what a router's imports cost: it loads the data
    plane (pyroute2) and the HTTP server (aiohttp.web), or it measures nothing."""
    code = machine_ref.IMPORT_CODE + "import sys\nassert 'pyroute2.iproute.linux' in sys.modules\n"
    code += "assert 'aiohttp.web' in sys.modules and 'weavenet.io.fastdp' in sys.modules\n"
    assert machine_ref.child_cpu_s(code, runs=1) > 0


def test_a_failing_reference_run_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="reference run failed"):
        machine_ref.child_cpu_s("raise SystemExit(3)", runs=1)
