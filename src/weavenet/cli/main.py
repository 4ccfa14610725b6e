"""The ``weave`` command line, compatible with the Weave Net 2.8 script.

Every sub-command talks to the router's HTTP API at ``WEAVE_HTTP_ADDR``
(default 127.0.0.1:6784); ``launch``/``stop`` use ``WEAVE_STATE_DIR``
(default /var/lib/weave) for the pid and log files.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn
from urllib.parse import quote

import click

from weavenet import __version__
from weavenet.cli import docker_network, launch_args, launcher
from weavenet.cli.admin_cmds import COMMANDS as ADMIN_COMMANDS
from weavenet.cli.client import ClientError, call, http_addr
from weavenet.cli.cni_cmds import COMMANDS as CNI_COMMANDS
from weavenet.cli.dataplane_cmds import COMMANDS as DATAPLANE_COMMANDS
from weavenet.cli.dns_cmds import COMMANDS as DNS_COMMANDS
from weavenet.cli.proxy_cmds import COMMANDS as PROXY_COMMANDS
from weavenet.cli.proxy_cmds import warn_if_proxy_in_env

STATUS_VIEWS = ("targets", "connections", "peers", "dns", "ipam")
OPTIONAL_SECTIONS = {"dns": "DNS", "ipam": "IPAM"}


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one line to stderr and exit."""
    click.echo(message.rstrip("\n"), err=True)
    sys.exit(code)


class WeaveGroup(click.Group):
    """A click group whose usage errors are a single line on stderr."""

    command_name: str | None = None  # the sub-command being parsed, for error messages

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, cmd, rest = super().resolve_command(ctx, args)
        self.command_name = name
        return name, cmd, rest

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        kwargs["prog_name"] = "weave"
        self.command_name = None
        try:
            result = super().main(*args, **kwargs)
        except click.UsageError as exc:
            fail(f"weave: {_usage_message(exc, self.command_name)} (see 'weave --help')")
        except click.ClickException as exc:
            fail(f"weave: {exc.format_message()}", exc.exit_code)
        except click.Abort:
            fail("weave: aborted")
        sys.exit(result if isinstance(result, int) else 0)


def _usage_message(exc: click.UsageError, command: str | None) -> str:
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        return "missing command"
    message = exc.format_message().strip().splitlines()[0].rstrip(".")
    return f"{command}: {message}" if command else message


def _request(method: str, path: str, **kwargs: Any) -> tuple[int, str]:
    try:
        return call(method, path, **kwargs)
    except ClientError as exc:
        fail(str(exc))


def _check(status: int, body: str) -> str:
    """Like the script's ``http_call``: 2xx returns the body, anything else fails."""
    if 200 <= status < 300:
        return body
    fail(body.strip() or f"weave router answered HTTP {status}")


@click.group(
    cls=WeaveGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
)
def main() -> None:
    """Weave Net (Python) command line."""


@main.command(
    context_settings={
        "ignore_unknown_options": True,
        "allow_extra_args": True,
        "allow_interspersed_args": False,
        "help_option_names": [],
    },
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def launch(args: Sequence[str]) -> None:
    """Start the router: weave launch [--password P] [router flags] [PEER...]."""
    if "--help" in args or "-h" in args:
        click.echo(launch_args.launch_help(), nl=False)
        return
    try:
        password, rest = launcher.take_option(args, "--password", "-password")
        state_dir, rest = launcher.take_option(rest, "--state-dir")
        addr, rest = launcher.take_option(rest, "--http-addr")
        iprange, rest = launcher.take_option(rest, "--ipalloc-range", "--iprange", "-iprange")
        plugin_given, rest = docker_network.plugin_args(rest)
        launch_args.check_peers(rest)
    except (launcher.LaunchError, docker_network.FlagError) as exc:
        fail(f"weave launch: {exc}")
    try:
        rest = launch_args.ipalloc_args(iprange, sys.stderr) + rest
    except launcher.LaunchError as exc:
        fail(str(exc))
    env = dict(os.environ)
    plugin = docker_network.plugin_wanted(plugin_given, docker_network.docker_api(rest, env))
    if plugin:
        rest = ["--plugin", *rest]
    if password is not None:
        env["WEAVE_PASSWORD"] = password
    config = launcher.LaunchConfig(
        state_dir=state_dir or os.environ.get("WEAVE_STATE_DIR") or launcher.DEFAULT_STATE_DIR,
        http_addr=addr or http_addr(),
        args=rest,
        env=env,
    )
    try:
        pid = launcher.launch(config, sys.stderr)
    except launcher.LaunchError as exc:
        fail(str(exc), exc.exit_code)
    except OSError as exc:
        fail(
            f"weave launch: cannot start the router: {exc} "
            "(run as root, or set WEAVE_STATE_DIR/--state-dir to a writable directory)"
        )
    if plugin:
        docker_network.create_weave_network(docker_network.docker_api(rest, env), sys.stderr)
    click.echo(pid)


@main.command()
def stop() -> None:
    """Stop the router."""
    state_dir = os.environ.get("WEAVE_STATE_DIR") or launcher.DEFAULT_STATE_DIR
    warn_if_proxy_in_env()
    if launcher.read_pid(state_dir) is not None:  # Weave removes it before stopping
        docker_network.remove_weave_network(os.environ.get("DOCKER_HOST"))
    if not launcher.stop(state_dir):
        click.echo("Weave is not running.")


@main.command()
@click.argument("view", required=False)
def status(view: str | None) -> None:
    """Show router status: weave status [targets|connections|peers|dns|ipam]."""
    if view is None:
        code, body = _request("GET", "/status")
        click.echo("\n" + _check(code, body))
        return
    if view not in STATUS_VIEWS:
        fail(f"Invalid 'weave status' sub-command: {view} (use one of {', '.join(STATUS_VIEWS)})")
    code, body = _request("GET", f"/status/{view}")
    if code == 404:
        reason = ""
        if view in OPTIONAL_SECTIONS:
            reason = f" ({OPTIONAL_SECTIONS[view]} is disabled on this router)"
        fail(f"Invalid 'weave status' sub-command: {view}{reason}")
    click.echo(_check(code, body), nl=False)


@main.command()
@click.option("-f", "--format", "template", metavar="TEMPLATE", help="Go template to render.")
def report(template: str | None) -> None:
    """Print the router report as JSON, or rendered with a Go template."""
    if template is None:
        body = _check(*_request("GET", "/report", accept_json=True))
        click.echo(body, nl=not body.endswith("\n"))
        return
    body = _check(*_request("GET", "/report?format=" + quote(template, safe="")))
    click.echo(body, nl=False)


@main.command()
@click.option("--replace", is_flag=True, help="Make these peers the whole target list.")
@click.argument("peers", nargs=-1)
def connect(replace: bool, peers: Sequence[str]) -> None:
    """Connect to peers: weave connect [--replace] [PEER...]."""
    form: list[tuple[str, str]] = [("peer", p) for p in peers]
    if replace:
        form.append(("replace", "true"))
    _check(*_request("POST", "/connect", form=form))


@main.command()
@click.argument("peers", nargs=-1, required=True)
def forget(peers: Sequence[str]) -> None:
    """Stop (re)connecting to peers: weave forget PEER...."""
    _check(*_request("POST", "/forget", form=[("peer", p) for p in peers]))


@main.command()
def version() -> None:
    """Print the script and router versions."""
    click.echo(f"weave script {__version__}")
    try:
        code, body = call("GET", "/report?format=" + quote("{{.Version}}", safe=""))
    except ClientError:
        code, body = 0, ""
    click.echo(f"weave {body}" if code == 200 else "weave router not running")


for _command in (
    *DATAPLANE_COMMANDS,
    *DNS_COMMANDS,
    *ADMIN_COMMANDS,
    *CNI_COMMANDS,
    *PROXY_COMMANDS,
):  # attach ... reset
    main.add_command(_command)


if __name__ == "__main__":
    main()
