"""The `weave` CLI against a fake router API (make_app + FakeRouterControl)."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from weavenet import __version__
from weavenet.api.http import make_app
from weavenet.api.testing import FakeRouterControl, serve_in_thread
from weavenet.cli import launcher
from weavenet.cli.main import main


@pytest.fixture
def control() -> FakeRouterControl:
    return FakeRouterControl()


@pytest.fixture
def router(control: FakeRouterControl, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with serve_in_thread(make_app(control)) as addr:
        monkeypatch.setenv("WEAVE_HTTP_ADDR", addr)
        yield addr


@pytest.fixture
def no_router(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    addr = str(tmp_path / "nothing-here.sock")
    monkeypatch.setenv("WEAVE_HTTP_ADDR", addr)
    return addr


def weave(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def one_line_error(result: Result) -> str:
    assert result.exit_code != 0, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# -- argument errors -------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["bogus"], "No such command 'bogus'"),
        ([], "missing command"),
        (["report", "--nope"], "report: No such option '--nope' (see"),
        (["report", "-f"], "report: Option '-f' requires an argument (see"),
        (["forget"], "forget: Missing argument 'PEERS...'"),
        (["status", "a", "b"], "status: Got unexpected extra argument (b)"),
    ],
)
def test_bad_arguments_print_one_line(args: list[str], fragment: str) -> None:
    line = one_line_error(weave(*args))
    assert fragment in line
    assert line.startswith("weave: ") and line.endswith("(see 'weave --help')")


def test_invalid_status_subcommand(router: str) -> None:
    line = one_line_error(weave("status", "bogus"))
    assert line.startswith("Invalid 'weave status' sub-command: bogus")


def test_help_exits_zero() -> None:
    result = weave("--help")
    assert result.exit_code == 0 and "status" in result.stdout


# -- talking to the router --------------------------------------------------------


def test_router_not_running(no_router: str) -> None:
    for args in (["status"], ["report"], ["connect", "10.0.0.1"], ["forget", "10.0.0.1"]):
        line = one_line_error(weave(*args))
        assert line == f"weave router is not running at {no_router}: start it with 'weave launch'"


def test_status_has_blank_lines_around_it(router: str) -> None:
    result = weave("status")
    assert result.exit_code == 0
    assert result.stdout.startswith("\n        Version: 2.8.1 (version check update disabled)\n")
    assert result.stdout.endswith(" Entries: 0\n\n")


def test_status_not_ready_fails(router: str, control: FakeRouterControl) -> None:
    control.state["Ready"] = False
    result = weave("status")
    assert result.exit_code == 1 and "Service: router" in result.stderr


def test_status_views(router: str) -> None:
    result = weave("status", "peers")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == "a2:00:00:00:00:01(host1)"
    assert weave("status", "targets").stdout == ""


def test_status_view_of_disabled_service(router: str, control: FakeRouterControl) -> None:
    del control.state["DNS"]
    line = one_line_error(weave("status", "dns"))
    assert line == "Invalid 'weave status' sub-command: dns (DNS is disabled on this router)"


def test_report_json_and_template(router: str) -> None:
    result = weave("report")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["Router"]["NickName"] == "host1"
    result = weave("report", "-f", "{{.Router.Name}} {{range .DNS.Upstream}}<{{.}}>{{end}}")
    assert (result.exit_code, result.stdout) == (0, "a2:00:00:00:00:01 <8.8.8.8>")


def test_report_template_error_is_shown(router: str) -> None:
    line = one_line_error(weave("report", "-f", "{{.Router.Name"))
    assert line.startswith("template: format:1:")


def test_connect_forget(router: str, control: FakeRouterControl) -> None:
    assert weave("connect", "10.0.0.5", "10.0.0.6:6783").exit_code == 0
    assert control.calls[-1] == ("connect", ["10.0.0.5", "10.0.0.6:6783"], False)
    assert weave("connect", "--replace", "10.0.0.7").exit_code == 0
    assert control.calls[-1] == ("connect", ["10.0.0.7"], True)
    assert weave("connect", "--replace").exit_code == 0
    assert control.calls[-1] == ("connect", [], True)
    assert weave("forget", "10.0.0.7").exit_code == 0
    assert control.calls[-1] == ("forget", ["10.0.0.7"], False)


def test_connect_errors_go_to_stderr(router: str) -> None:
    result = weave("connect", "a:b")
    assert result.exit_code == 1
    assert result.stderr == "invalid peer address 'a:b': expected host[:port]\n"


def test_version(router: str) -> None:
    result = weave("version")
    assert result.stdout == f"weave script {__version__}\nweave 2.8.1\n"


def test_version_without_router(no_router: str) -> None:
    result = weave("version")
    assert result.stdout == f"weave script {__version__}\nweave router not running\n"


# -- launch / stop with a fake router process ----------------------------------

FAKE_WEAVER = textwrap.dedent(
    """
    import asyncio, json, os, signal, sys
    from weavenet.api.http import make_app, start_http
    from weavenet.api.testing import FakeRouterControl

    args = sys.argv[1:]
    state = args[args.index("--state-dir") + 1]
    with open(os.path.join(state, "argv.json"), "w") as f:
        json.dump({"argv": args, "password": os.environ.get("WEAVE_PASSWORD")}, f)
    if "--fail" in args:
        print("FATA: something is badly wrong", file=sys.stderr)
        sys.exit(1)

    async def serve():
        addr = args[args.index("--http-addr") + 1]
        runner = await start_http(make_app(FakeRouterControl()), addr)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(serve())
    """
)


@pytest.fixture
def fake_weaver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    script = tmp_path / "fake_weaver.py"
    script.write_text(FAKE_WEAVER)
    state = tmp_path / "state"
    monkeypatch.setattr(launcher, "router_command", lambda: [sys.executable, str(script)])
    monkeypatch.setenv("WEAVE_STATE_DIR", str(state))
    monkeypatch.setenv("WEAVE_HTTP_ADDR", str(tmp_path / "weave.sock"))
    yield state
    launcher.stop(str(state), timeout=5)


def test_launch_status_stop(fake_weaver: Path) -> None:
    result = weave("launch", "--password=s3cret", "--nickname", "n1", "10.0.0.9")
    assert result.exit_code == 0, result.output
    pid = int(result.stdout)
    assert (fake_weaver / "weaver.pid").read_text().strip() == str(pid)
    assert oct(fake_weaver.stat().st_mode & 0o777) == "0o700"
    assert "Waiting for weave router to start" in result.stderr
    recorded = json.loads((fake_weaver / "argv.json").read_text())
    assert recorded["password"] == "s3cret"
    assert "s3cret" not in " ".join(recorded["argv"])
    assert recorded["argv"][-3:] == ["--nickname", "n1", "10.0.0.9"]

    assert weave("status").exit_code == 0
    again = weave("launch")
    assert again.exit_code == 3
    assert again.stderr == "weave is already running; you can stop it with 'weave stop'.\n"

    assert weave("stop").exit_code == 0
    assert launcher.read_pid(str(fake_weaver)) is None
    assert not _alive(pid)
    assert weave("stop").stdout == "Weave is not running.\n"


def test_launch_failure_shows_router_log(fake_weaver: Path) -> None:
    result = weave("launch", "--fail")
    assert result.exit_code == 1
    assert "FATA: something is badly wrong" in result.stderr
    assert "The weave router exited with code 1" in result.stderr
    assert launcher.read_pid(str(fake_weaver)) is None


def test_launch_option_without_value() -> None:
    line = one_line_error(weave("launch", "--password"))
    assert line == "weave launch: option --password needs a value, e.g. --password <value>"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_take_option() -> None:
    assert launcher.take_option(["-password", "x", "a"], "--password", "-password") == ("x", ["a"])
    assert launcher.take_option(["--password=", "a"], "--password") == ("", ["a"])
    assert launcher.take_option(["a", "b"], "--password") == (None, ["a", "b"])
