"""`weave launch` / `weave stop` and Docker: the plugin flag and the Docker network `weave`.

As Weave's script: `weave launch` runs the router with `--plugin` unless `--plugin=false`
(here: by default only when a Docker daemon answers), and once the router answers, creates
the Docker network `weave` (driver and IPAM driver `weavemesh`, option
`works.weave.multicast`), so that `docker run --net=weave` works; `weave stop` removes that
network. No Docker daemon answering is not an error (the network is for Docker users); the
daemon is `--docker-api`, else $DOCKER_HOST, else the default socket, and
`--docker-api ''` leaves Docker alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TextIO

from weavenet.io.docker_api import (  # light: the client is imported on first use
    DockerUnavailable,
    daemon_answers,
    ensure_network,
    remove_network,
    socket_missing,
)

NETWORK = "weave"
DRIVER = "weavemesh"
TRUE = ("", "true", "1", "t", "yes")
FALSE = ("false", "0", "f", "no")


class FlagError(ValueError):
    pass


def plugin_args(args: Sequence[str]) -> tuple[bool | None, list[str]]:
    """Take `--plugin[=true|false]` out of `args`: (True/False as given, None if not
    given; the other args)."""
    on: bool | None = None
    rest: list[str] = []
    for arg in args:
        name, _, value = arg.partition("=")
        if name != "--plugin":
            rest.append(arg)
            continue
        if value.lower() in TRUE:
            on = True
        elif value.lower() in FALSE:
            on = False
        else:
            raise FlagError(f"invalid value {value!r} for --plugin: give true or false")
    return on, rest


def plugin_wanted(given: bool | None, url: str | None) -> bool:
    """As given; by default on when a Docker daemon answers (the plugin socket lives in
    Docker's fixed /run/docker/plugins: no daemon, no use for it)."""
    if given is not None:
        return given
    if url == "" or socket_missing(url):
        return False
    return daemon_answers(url)


def docker_api(args: Sequence[str], env: Mapping[str, str]) -> str | None:
    """The daemon the router will use: '' if Docker is off, None for the default socket."""
    found: str | None = env.get("DOCKER_HOST")
    for i, arg in enumerate(args):
        if arg == "--docker-api" and i + 1 < len(args):
            found = args[i + 1]
        elif arg.startswith("--docker-api="):
            found = arg.split("=", 1)[1]
    return found


def network_config() -> dict[str, object]:
    return {
        "Driver": DRIVER,
        "IPAM": {"Driver": DRIVER},
        "Options": {"works.weave.multicast": "true"},
        "CheckDuplicate": True,
    }


def create_weave_network(url: str | None, err: TextIO) -> bool:
    """Create the Docker network `weave` unless it exists; a warning if that fails."""
    if url == "" or socket_missing(url):
        return False
    try:
        return ensure_network(NETWORK, network_config(), url)
    except DockerUnavailable as exc:
        if exc.status is not None:  # a daemon answered, and said no
            err.write(f"WARNING: could not create the Docker network '{NETWORK}': {exc}\n")
        return False


def remove_weave_network(url: str | None) -> bool:
    """Remove the Docker network `weave` if a daemon has one (quietly otherwise)."""
    if url == "" or socket_missing(url):
        return False
    try:
        return remove_network(NETWORK, url)
    except DockerUnavailable:
        return False
