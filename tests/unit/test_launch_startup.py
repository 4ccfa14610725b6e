"""Start-up cost of `weave launch`: what it must not do (import Docker's client with no
Docker socket), and the forked router's exit status (cli/router_fork.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from weavenet.cli import docker_network
from weavenet.cli.router_fork import _exit_code


def test_no_docker_socket_means_no_plugin_and_no_docker_client(tmp_path: Path) -> None:
    missing = f"unix://{tmp_path}/docker.sock"
    code = (
        "import sys\n"
        "from weavenet.cli import docker_network as d\n"
        f"assert d.plugin_wanted(None, {missing!r}) is False\n"
        f"assert d.create_weave_network({missing!r}, sys.stderr) is False\n"
        f"assert d.remove_weave_network({missing!r}) is False\n"
        "assert 'aiodocker' not in sys.modules and 'aiohttp' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_a_socket_that_is_there_is_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sock = tmp_path / "docker.sock"
    sock.touch()
    asked: list[str | None] = []

    def answers(url: str | None = None) -> bool:
        asked.append(url)
        return True

    monkeypatch.setattr(docker_network, "daemon_answers", answers)
    assert docker_network.plugin_wanted(None, f"unix://{sock}") is True
    assert docker_network.plugin_wanted(None, "tcp://127.0.0.1:1") is True
    assert asked == [f"unix://{sock}", "tcp://127.0.0.1:1"]
    assert docker_network.plugin_wanted(False, f"unix://{sock}") is False


@pytest.mark.parametrize(("code", "status"), [(None, 0), (0, 0), (3, 3), ("bad flag", 1)])
def test_forked_router_exit_status(
    code: object, status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _exit_code(code) == status
    assert capsys.readouterr().err == ("bad flag\n" if isinstance(code, str) else "")


def test_weave_script_runs_with_the_collector_off() -> None:
    code = (
        "import gc, sys\n"
        "sys.argv = ['weave', 'version']\n"
        "import weavenet.cli.main as m\n"
        "m.main = lambda: print(gc.isenabled())\n"
        "from weavenet.cli.entry import main\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout == "False\n", proc.stderr


@pytest.mark.parametrize("docker", [False, True])
def test_the_router_imports_dockers_client_only_with_a_docker_socket(
    tmp_path: Path, docker: bool
) -> None:
    """aiohttp's client side (its connector builds two TLS contexts at import) is for
    Docker: a router on a host without Docker serves with aiohttp.web alone."""
    sock = tmp_path / "docker.sock"
    if docker:
        sock.touch()
    code = (
        "import sys\n"
        "import weavenet.daemon as d\n"
        "async def serve(opts):\n"
        "    print(sorted(m for m in ('aiohttp.web', 'aiohttp.client', 'aiodocker')"
        " if m in sys.modules))\n"
        "d.serve = serve\n"
        f"d.weaver.main(['--state-dir', {str(tmp_path)!r}, '--weave-bridge', 'weave',"
        f" '--docker-api', 'unix://{sock}', '--proxy'], standalone_mode=False)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    expected = ["aiodocker", "aiohttp.client", "aiohttp.web"] if docker else ["aiohttp.web"]
    assert proc.stdout.splitlines()[-1] == str(expected)


ROUTER_IMPORTS = (
    "import sys\n"
    "import weavenet.cli.main\n"  # the CLI's own, inherited by the forked router
    "import weavenet.daemon as d\n"
    "async def serve(opts):\n"
    "    pass\n"
    "d.serve = serve\n"  # everything up to the event loop: the flags, import_parts
    "d.weaver.main(['--state-dir', {state!r}, '--weave-bridge', 'weave',\n"
    "               '--docker-api', 'unix://{state}/none.sock', '--proxy'],\n"
    "              standalone_mode=False)\n"
)


def test_a_router_without_a_password_loads_no_crypto_library(tmp_path: Path) -> None:
    """PyNaCl and cryptography (~50 modules) come with the first encrypted connection."""
    code = ROUTER_IMPORTS.format(state=str(tmp_path)) + (
        "loaded = sorted({m.split('.')[0] for m in sys.modules} & {'nacl', 'cryptography'})\n"
        "assert not loaded, loaded\n"
        "from weavenet.core.mesh.crypto import MessageCodec, derive_session_key, generate_keypair\n"
        "from weavenet.core.overlay.fast_sleeve_crypto import Opener, Sealer, direction_keys\n"
        "from weavenet.core.overlay.sleeve_crypto import SleeveDecryptor, SleeveEncryptor\n"
        "priv, pub = generate_keypair()\n"
        "key = derive_session_key(pub, priv, b'secret')\n"
        "sealed = SleeveEncryptor(key, True, 1).seal(b'records', False)\n"
        "assert SleeveDecryptor(key, True).open(sealed, 6) == b'records'\n"
        "send, recv = direction_keys(key, True)\n"
        "box = Sealer(send).seal(1, b'aad', b'frame')\n"
        "assert Opener(send).open(1, b'aad', box) == b'frame'\n"
        "assert MessageCodec(key, True).encrypted\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
