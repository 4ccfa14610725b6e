"""lean_package: a package's submodules without its __init__, which still runs on demand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PACKAGE = {
    "__init__.py": (
        '__version__ = "1.2.3"\n'
        "import sys\nsys.modules['su_events'].append('init')\nfrom .sub import value\n"
    ),
    "sub.py": "import sys\nsys.modules['su_events'].append('sub')\nvalue = 42\n",
    "other.py": "from su_lean import sub\n",
    "versioned.py": "from . import __version__\n",
}


def run(tmp_path: Path, code: str) -> str:
    pkg = tmp_path / "su_lean"
    pkg.mkdir(exist_ok=True)
    for name, text in PACKAGE.items():
        (pkg / name).write_text(text)
    prelude = (
        "import sys\n"
        "events = sys.modules['su_events'] = []\n"
        "from weavenet.lean_import import lean_package\n"
        "lean_package('su_lean')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", prelude + code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_submodules_import_without_the_init(tmp_path: Path) -> None:
    out = run(tmp_path, "from su_lean.sub import value\nimport su_lean.other\nprint(events, value)")
    assert out == "['sub'] 42\n"


def test_a_name_of_the_init_runs_it_once(tmp_path: Path) -> None:
    code = (
        "import su_lean.sub\n"
        "from su_lean import value\n"
        "import su_lean\n"
        "print(events, value, su_lean.value, hasattr(su_lean, 'missing'))\n"
    )
    assert run(tmp_path, code) == "['sub', 'init'] 42 42 False\n"


def test_a_missing_package_is_an_import_error(tmp_path: Path) -> None:
    code = (
        "try:\n"
        "    lean_package('su_no_such_package')\n"
        "except ImportError as exc:\n"
        "    print('ImportError', exc)\n"
    )
    assert run(tmp_path, code).startswith("ImportError")


def test_the_declared_version_is_there_without_the_init(tmp_path: Path) -> None:
    code = "from su_lean import versioned\nprint(events, versioned.__version__)"
    assert run(tmp_path, code) == "[] 1.2.3\n"
