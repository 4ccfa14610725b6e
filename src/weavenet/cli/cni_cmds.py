"""``weave setup-cni``: install the CNI plugins and Weave's conflist (as Weave's script).

The plugins become symlinks ``weave-net`` and ``weave-ipam`` in the CNI bin directory,
pointing at this installation's entry points (replaced atomically, so a runtime never
sees a half-written file); ``portmap``, chained in the conflist, is linked from
Debian's containernetworking-plugins if the directory lacks it. The conflist
``10-weave.conflist`` is written only if absent (as Weave does; ``--force`` rewrites
it); a ``10-weave.conf`` of Weave < 2.4 is removed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

CONFLIST = "10-weave.conflist"
PLUGINS = ("weave-net", "weave-ipam")
NO_PORTMAP = "install containernetworking-plugins, or remove portmap from the conflist"
PORTMAP_DIRS = ("/usr/lib/cni", "/opt/cni/bin", "/usr/libexec/cni")


def conflist(hairpin: bool = True) -> dict[str, object]:
    """Weave's conflist (prog/weave-kube/launch.sh), on CNI 1.0.0."""
    return {
        "cniVersion": "1.0.0",
        "name": "weave",
        "plugins": [
            {"name": "weave", "type": "weave-net", "hairpinMode": hairpin},
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
        ],
    }


def _symlink(target: Path, link: Path) -> None:
    tmp = link.with_name(f".{link.name}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, link)


def entry_point(name: str) -> Path:
    found = Path(sys.executable).parent / name
    if not os.access(found, os.X_OK):
        raise click.ClickException(f"{found} is missing: reinstall weavenet (pip install -e .)")
    return found


def install(bin_dir: Path, net_dir: Path, hairpin: bool, force: bool) -> list[str]:
    """Do the installation; return one line per thing done."""
    done = []
    bin_dir.mkdir(parents=True, exist_ok=True)
    net_dir.mkdir(parents=True, exist_ok=True)
    for name in PLUGINS:
        _symlink(entry_point(name), bin_dir / name)
        done.append(f"installed {bin_dir / name} -> {entry_point(name)}")
    portmap = bin_dir / "portmap"
    if not portmap.exists():
        source = next((Path(d) / "portmap" for d in PORTMAP_DIRS
                       if (Path(d) / "portmap").is_file()), None)  # fmt: skip
        if source is None:
            done.append(f"warning: no portmap plugin for {bin_dir}: {NO_PORTMAP}")
        else:
            _symlink(source, portmap)
            done.append(f"installed {portmap} -> {source}")
    (net_dir / "10-weave.conf").unlink(missing_ok=True)
    target = net_dir / CONFLIST
    if force or not target.exists():
        tmp = target.with_name(f".{CONFLIST}.tmp")
        tmp.write_text(json.dumps(conflist(hairpin), indent=4) + "\n")
        os.replace(tmp, target)
        done.append(f"wrote {target}")
    else:
        done.append(f"kept {target} (--force rewrites it)")
    return done


@click.command("setup-cni")
@click.option("--cni-bin-dir", default="/opt/cni/bin", show_default=True, type=Path)
@click.option("--cni-net-dir", default="/etc/cni/net.d", show_default=True, type=Path)
@click.option(
    "--hairpin-mode/--no-hairpin-mode",
    default=lambda: os.environ.get("HAIRPIN_MODE", "true") != "false",
    help="hairpin on the container ports (default: HAIRPIN_MODE, else true)",
)
@click.option("--force", is_flag=True, help="rewrite the conflist if it exists")
def setup_cni(cni_bin_dir: Path, cni_net_dir: Path, hairpin_mode: bool, force: bool) -> None:
    """Install the CNI plugins weave-net, weave-ipam and the conflist 10-weave.conflist."""
    try:
        lines = install(cni_bin_dir, cni_net_dir, hairpin_mode, force)
    except OSError as exc:
        raise click.ClickException(f"setup-cni: {exc}") from None
    for line in lines:
        click.echo(line, err=line.startswith("warning"))


COMMANDS: tuple[click.Command, ...] = (setup_cni,)
