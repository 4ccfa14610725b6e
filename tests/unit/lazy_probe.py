"""Runs a snippet in a fresh interpreter and reports which of some modules it loaded:
the test process's own sys.modules already holds every library the suite uses."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

PRELUDE = (
    "import json, sys\n"
    "def loaded(top):\n"
    "    return any(m == top or m.startswith(top + '.') for m in sys.modules)\n"
    "out = {}\n"
)


def run_probe(code: str, timeout: float = 120.0) -> dict[str, Any]:
    """Run ``code`` (which fills the dict ``out``) in a new interpreter; ``out`` back."""
    proc = subprocess.run(
        [sys.executable, "-c", PRELUDE + code + "\nprint(json.dumps(out))\n"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return result
