"""``weave env [--restore]`` and ``weave config``: point the Docker client at the proxy,
in the exact words of Weave's script (fns ``proxy_addr``, main ``env``/``config``).

    eval $(weave env)             export DOCKER_HOST=<proxy> ORIG_DOCKER_HOST=<before>
    eval $(weave env --restore)   DOCKER_HOST=<before>
    docker $(weave config) ps     -H=<proxy>

The proxy's address comes from the router (``GET /proxyaddrs``, the first line, with
0.0.0.0 replaced by PROXY_HOST); nothing is printed when the proxy is not running.
"""

from __future__ import annotations

import os
import sys

import click

from weavenet.cli.client import ClientError, call

NOTHING_TO_RESTORE = (
    "Nothing to restore. This is most likely because there was no preceding invocation"
    " of 'eval $(weave env)' in this shell."
)
PROXY_IN_ENV_WARNING = (
    "WARNING: It appears that your environment is configured to use the Weave Docker API"
    " proxy. Stopping it will break this and subsequent docker invocations. To restore"
    " your environment, run 'eval $(weave env --restore)'."
)


def docker_client_host() -> str:
    return os.environ.get("DOCKER_CLIENT_HOST") or os.environ.get("DOCKER_HOST") or ""


def proxy_host() -> str:
    """Weave's PROXY_HOST: $PROXY_HOST, else the host part of a DOCKER_HOST, else 127.0.0.1."""
    given = os.environ.get("PROXY_HOST")
    if given:
        return given
    host = os.environ.get("DOCKER_HOST", "").removeprefix("tcp://")
    return (host.split(":")[0] if ":" in host else "") or "127.0.0.1"


def proxy_addr() -> str | None:
    """The proxy's first address, or None if the router or its proxy is not running."""
    try:
        code, body = call("GET", "/proxyaddrs")
    except ClientError:
        return None
    first = body.splitlines()[0] if code == 200 and body.strip() else ""
    return first.replace("0.0.0.0", proxy_host()) or None


def warn_if_proxy_in_env() -> None:
    """Before `weave stop`: warn when this shell's docker talks to the proxy."""
    addr = proxy_addr()
    if addr is not None and addr == docker_client_host():
        click.echo(PROXY_IN_ENV_WARNING)


@click.command()
@click.option("--restore", is_flag=True, help="Print how to undo 'eval $(weave env)'.")
def env(restore: bool) -> None:
    """Print the environment that points docker at the proxy: eval $(weave env)."""
    if restore:
        orig = os.environ.get("ORIG_DOCKER_HOST")
        if orig is None:
            click.echo(NOTHING_TO_RESTORE, err=True)
            sys.exit(1)
        click.echo(f"DOCKER_HOST={orig}")
        return
    addr = proxy_addr()
    if addr is None:
        return
    client = docker_client_host()
    keep = "" if addr == client else f"ORIG_DOCKER_HOST={client}"
    click.echo(f"export DOCKER_HOST={addr} {keep}")


@click.command()
def config() -> None:
    """Print the docker client flag for the proxy: docker $(weave config) ..."""
    addr = proxy_addr()
    if addr is None:
        sys.exit(1)
    click.echo(f"-H={addr}")


COMMANDS = (env, config)
