"""The wait program (Weave's weavewait, ``/w/w``): the first thing a container created
through the proxy runs. It waits until ``ethwe`` is up with an IPv4 address, then execs
the container's own entrypoint and command, so that command never runs without the
weave network.

It is a shell script run by a statically linked busybox (Debian's ``busybox-static``),
both in a directory the router owns, bind-mounted read-only at ``/w``: it needs nothing
from the image. The command is looked up on the container's PATH and exec'd by its full
path, so that a name busybox also knows (``ping``) runs the image's program.
"""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

from weavenet.core.errors import ConfigError

WAIT_DIR = "weavewait"  # in the state dir (weave reset removes it: cli.admin_cmds.STATE_DIRS)
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
PT_INTERP = 3

SCRIPT = r"""#!/w/busybox sh
# weavenet's weavewait: run the container's command once ethwe is up with an address.
if [ $# -eq 0 ]; then echo "No command specified" >&2; exit 1; fi
while :; do
  addr=$(/w/busybox ip -o -4 addr show dev ethwe 2>/dev/null)
  link=$(/w/busybox ip -o link show dev ethwe 2>/dev/null)
  case "$addr" in *inet*) case "$link" in *[\<,]UP[,\>]*) break ;; esac ;; esac
  /w/busybox usleep 10000
done
cmd=$1
shift
case "$cmd" in
  */*) ;;
  *)
    found=
    IFS=:
    for dir in ${PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}; do
      if [ -f "$dir/$cmd" ] && [ -x "$dir/$cmd" ]; then found="$dir/$cmd"; break; fi
    done
    unset IFS
    if [ -z "$found" ]; then echo "$cmd: executable file not found in \$PATH" >&2; exit 127; fi
    cmd=$found
    ;;
esac
exec "$cmd" "$@"
"""


def is_static_elf(path: str) -> bool:
    """True for an ELF executable without a program interpreter (statically linked)."""
    try:
        with open(path, "rb") as f:
            header = f.read(64)
            if len(header) < 64 or header[:4] != b"\x7fELF" or header[4] != 2:
                return False
            endian = "<" if header[5] == 1 else ">"
            (phoff,) = struct.unpack_from(endian + "Q", header, 0x20)
            phentsize, phnum = struct.unpack_from(endian + "HH", header, 0x36)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return False
    types = (struct.unpack_from(endian + "I", table, i * phentsize)[0] for i in range(phnum))
    return len(table) == phentsize * phnum and PT_INTERP not in types


def find_busybox() -> str:
    for candidate in (shutil.which("busybox") or "", *BUSYBOX_CANDIDATES):
        if candidate and is_static_elf(candidate):
            return candidate
    raise ConfigError(
        "the Docker API proxy needs a statically linked busybox for its wait program: "
        "install Debian's busybox-static (apt-get install busybox-static), or run with "
        "--proxy=false"
    )


def _replace(path: Path, data: bytes, mode: int) -> None:
    if path.exists() and path.read_bytes() == data:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    tmp.replace(path)


def _place_binary(path: Path, source: Path) -> None:
    """``source`` at ``path``: a hard link where both are on one filesystem (no 2 MB to
    read and write at every router start), else a copy."""
    try:
        if path.exists() and os.path.samefile(path, source):
            return
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        os.link(source, tmp)
        tmp.replace(path)
    except OSError:  # another filesystem (EXDEV), or links not allowed there
        _replace(path, source.read_bytes(), 0o755)


def install(directory: Path, busybox: str | None = None) -> Path:
    """Put the wait program in `directory` (created); return it (the volume source)."""
    source = Path(busybox or find_busybox())
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    _place_binary(directory / "busybox", source)
    _replace(directory / "w", SCRIPT.encode(), 0o755)
    return directory
