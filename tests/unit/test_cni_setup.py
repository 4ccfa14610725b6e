"""`weave setup-cni` installs symlinks to our entry points and Weave's conflist."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from weavenet.cli.cni_cmds import CONFLIST, setup_cni


def test_setup_cni_installs_plugins_and_conflist(tmp_path: Path) -> None:
    bin_dir, net_dir = tmp_path / "bin", tmp_path / "net"
    net_dir.mkdir()
    (net_dir / "10-weave.conf").write_text("{}")  # Weave <= 2.4 left this
    result = CliRunner().invoke(
        setup_cni, ["--cni-bin-dir", str(bin_dir), "--cni-net-dir", str(net_dir)]
    )
    assert result.exit_code == 0, result.output
    for name in ("weave-net", "weave-ipam"):
        assert (bin_dir / name).is_symlink() and (bin_dir / name).resolve().name == name
    conf = json.loads((net_dir / CONFLIST).read_text())
    assert conf["name"] == "weave" and conf["cniVersion"] == "1.0.0"
    assert [p["type"] for p in conf["plugins"]] == ["weave-net", "portmap"]
    assert conf["plugins"][0]["hairpinMode"] is True
    assert conf["plugins"][1] == {
        "type": "portmap",
        "capabilities": {"portMappings": True},
        "snat": True,
    }
    assert not (net_dir / "10-weave.conf").exists()


def test_an_existing_conflist_is_kept_unless_forced(tmp_path: Path) -> None:
    args = ["--cni-bin-dir", str(tmp_path / "bin"), "--cni-net-dir", str(tmp_path)]
    (tmp_path / CONFLIST).write_text("mine")
    assert CliRunner().invoke(setup_cni, args).exit_code == 0
    assert (tmp_path / CONFLIST).read_text() == "mine"
    assert CliRunner().invoke(setup_cni, [*args, "--force", "--no-hairpin-mode"]).exit_code == 0
    assert json.loads((tmp_path / CONFLIST).read_text())["plugins"][0]["hairpinMode"] is False
