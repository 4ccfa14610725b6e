"""Container images for the Kubernetes test cluster, built locally (no registry is reachable).

Each image is a docker-archive tarball (``manifest.json`` + config + one layer), the format
``ctr images import`` reads: ``pause`` (the static binary built from the Kubernetes tree) and
``busybox`` (Debian's busybox-static with the applets the tests use).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import msgspec

PAUSE_IMAGE = "k8s.gcr.io/pause:3.2"
BUSYBOX_IMAGE = "weavenet.local/busybox:1"
BUSYBOX_BINARY = Path("/bin/busybox")
BUSYBOX_APPLETS = ("sh", "ping", "sleep", "ip", "cat", "hostname", "wget", "nc", "ifconfig", "ls")


class ImageSpec(msgspec.Struct, frozen=True):
    ref: str
    files: dict[str, Path]  # path in the image -> file on the host
    symlinks: dict[str, str]  # path in the image -> link target
    entrypoint: list[str]


def pause_spec(pause_binary: Path) -> ImageSpec:
    return ImageSpec(PAUSE_IMAGE, {"pause": pause_binary}, {}, ["/pause"])


def busybox_spec() -> ImageSpec:
    links = {f"bin/{applet}": "busybox" for applet in BUSYBOX_APPLETS}
    return ImageSpec(BUSYBOX_IMAGE, {"bin/busybox": BUSYBOX_BINARY}, links, ["/bin/sh"])


def _layer(spec: ImageSpec) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        dirs = sorted({str(Path(p).parent) for p in [*spec.files, *spec.symlinks]} - {"."})
        for d in [*dirs, "tmp", "etc"]:
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        for name, src in spec.files.items():
            data = src.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
        for name, target in spec.symlinks.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def build_archive(spec: ImageSpec, out: Path) -> Path:
    """Write `spec` as a docker-archive tarball at `out` (skipped when it already exists)."""
    if out.exists():
        return out
    layer = _layer(spec)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": spec.entrypoint, "Env": ["PATH=/bin"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "weavenet harness"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    layer_name = diff_id.split(":", 1)[1] + "/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": [spec.ref], "Layers": [layer_name]}]
    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, mode="w") as tar:
        _add_bytes(tar, config_name, config_bytes)
        _add_bytes(tar, layer_name, layer)
        _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
    tmp.rename(out)
    return out


def build_images(cache: Path) -> list[Path]:
    """The tarballs of every image the cluster needs, built into `cache`/images."""
    images = cache / "images"
    images.mkdir(parents=True, exist_ok=True)
    return [
        build_archive(pause_spec(cache / "bin" / "pause"), images / "pause.tar"),
        build_archive(busybox_spec(), images / "busybox.tar"),
    ]
