"""The Go text/template subset behind `weave report -f` and /report?format=."""

from __future__ import annotations

from typing import Any

import pytest

from weavenet.api.gofmt import go_json, go_sprintf, go_str
from weavenet.api.template import TemplateError, parse, render
from weavenet.api.testing import sample_report

DATA: dict[str, Any] = {
    "Name": "host1",
    "Port": 6783,
    "Ready": True,
    "Off": False,
    "Nil": None,
    "Ratio": 0.5,
    "Big": 1048576.0,
    "List": ["a", "b"],
    "Empty": [],
    "Map": {"b": 2, "a": 1},
    "Peers": [{"Nick": "one", "Conns": [1, 2]}, {"Nick": "two", "Conns": []}],
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("plain text", "plain text"),
        ("{{.Name}}:{{.Port}}", "host1:6783"),
        ("{{.Ready}} {{.Off}}", "true false"),
        ("{{.Nil}}|{{.Missing}}", "<no value>|<no value>"),
        ("{{.Ratio}} {{.Big}}", "0.5 1048576"),
        ("{{.List}} {{.Empty}} {{.Map}}", "[a b] [] map[a:1 b:2]"),
        ("{{.Peers}}", "[map[Conns:[1 2] Nick:one] map[Conns:[] Nick:two]]"),
        ("{{len .List}} {{len .Peers}} {{len .Name}} {{len .Nil}}", "2 2 5 0"),
        ("{{range .List}}<{{.}}>{{end}}", "<a><b>"),
        ("{{range $i, $v := .List}}{{$i}}={{$v}} {{end}}", "0=a 1=b "),
        ("{{range $v := .List}}{{$v}}{{end}}", "ab"),
        ("{{range $k, $v := .Map}}{{$k}}{{$v}}{{end}}", "a1b2"),
        ("{{range .Empty}}x{{else}}none{{end}}", "none"),
        ("{{range .Peers}}{{.Nick}}:{{len .Conns}};{{end}}", "one:2;two:0;"),
        ("{{range .Peers}}{{$.Name}}{{end}}", "host1host1"),
        ("{{if .Ready}}y{{else}}n{{end}}", "y"),
        ("{{if .Empty}}y{{else if .Off}}o{{else}}n{{end}}", "n"),
        ("{{if not .Off}}y{{end}}", "y"),
        ("{{if and .Ready .List}}both{{end}}", "both"),
        ("{{or .Nil .Name}}", "host1"),
        ("{{with .Map}}{{.a}}{{else}}none{{end}}", "1"),
        ("{{with .Nil}}x{{else}}none{{end}}", "none"),
        ("{{$n := .Name}}{{$n}}", "host1"),
        ("{{$n := 1}}{{$n = 2}}{{$n}}", "2"),
        ('{{if eq .Name "host1"}}me{{end}}', "me"),
        ("{{if eq .Port 1 2 6783}}in{{end}}", "in"),
        ("{{if ne .Port 1}}ne{{end}}{{if lt 1 2}}lt{{end}}", "nelt"),
        ('{{printf "%-8s|%5d|%q|%v" .Name .Port .Name .Ready}}', 'host1   | 6783|"host1"|true'),
        ('{{.Name | printf "[%s]"}}', "[host1]"),
        ('{{index .List 1}} {{index .Map "b"}}', "b 2"),
        ("{{(index .Peers 0).Nick}}", "one"),
        ("{{json .Map}}", '{"b":2,"a":1}'),
        ("{{json .List}} {{json .Nil}} {{json .Name}}", '["a","b"] null "host1"'),
        ("{{print .Port .Port}} {{print .Name .Name}}", "6783 6783 host1host1"),
        ("a {{- .Name -}} \n b", "ahost1b"),
        ("{{/* a comment */}}x", "x"),
        ('{{range .List}}{{if eq . "b"}}{{break}}{{end}}{{.}}{{end}}', "a"),
        ('{{range .List}}{{if eq . "a"}}{{continue}}{{end}}{{.}}{{end}}', "b"),
        ("{{`raw {{ text`}}", "raw {{ text"),
        ('{{"esc\\"aped\\n"}}', 'esc"aped\n'),
        ("{{-1}} {{0x10}} {{1.5}}", "-1 16 1.5"),
    ],
)
def test_render(template: str, expected: str) -> None:
    assert render(template, DATA) == expected


def test_weave_test_suite_templates_against_a_report() -> None:
    report = sample_report()
    report["Router"]["Targets"] = ["10.2.2.1", "10.2.2.2"]
    assert render("{{.Router.Name}} {{.Router.NickName}}", report) == "a2:00:00:00:00:01 host1"
    assert render("{{len .Router.Peers}}", report) == "2"
    assert render("{{.IPAM.DefaultSubnet}} {{.DNS.Domain}}", report) == "10.32.0.0/12 weave.local."
    assert render("{{len .DNS.Entries}}", report) == "0"
    assert render("{{range .Router.Targets}}{{.}}\n{{end}}", report) == "10.2.2.1\n10.2.2.2\n"
    assert render("{{.VersionCheck.Enabled}} {{.Version}}", report) == "false 2.8.1"
    assert render("{{json .DNS}}", report).startswith('{"Domain":"weave.local.","Upstream":')


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("{{.Name", "format:1:1: unclosed action"),
        ("{{nosuch .Name}}", 'function "nosuch" not defined'),
        ("{{if .Ready}}x", "{{if}} has no {{end}}"),
        ("x{{end}}", "format:1:4: unexpected {{end}}"),
        ("line1\n{{.Name )}}", "format:2:9: unexpected ')'"),
        ("{{range .List}}{{else}}{{else}}{{end}}", "format:1:"),
        ("{{/* unterminated", "unclosed comment"),
    ],
)
def test_parse_errors_say_where(template: str, fragment: str) -> None:
    with pytest.raises(TemplateError) as info:
        parse(template)
    assert fragment in str(info.value)
    assert str(info.value).startswith("template: format:")


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("{{.Nil.Field}}", "nil pointer evaluating <.Nil.Field>"),
        ("{{.Name.Field}}", "can't evaluate field Field in type string"),
        ("{{.Name 1}}", "can't give argument to non-function <.Name>"),
        ("{{len .Port}}", "error calling len"),
        ("{{index .List 5}}", "error calling index"),
        ("{{$nope}}", "undefined variable: $nope"),
        ("{{range .Name}}{{end}}", "range can't iterate over host1"),
        ("{{lt .Name 1}}", "incompatible types for comparison"),
    ],
)
def test_execution_errors(template: str, fragment: str) -> None:
    tmpl = parse(template)
    with pytest.raises(TemplateError) as info:
        tmpl.execute(DATA)
    assert fragment in str(info.value)
    assert 'executing "format"' in str(info.value)


def test_parse_once_execute_many() -> None:
    tmpl = parse("{{.Name}}")
    assert tmpl.execute({"Name": "a"}) == "a"
    assert tmpl.execute({"Name": "b"}) == "b"


def test_go_json_escapes_html_like_go() -> None:
    assert go_json({"a": "<b>&"}) == '{"a":"\\u003cb\\u003e\\u0026"}'
    assert go_json({"a": [1, True, None]}, indent=4) == (
        '{\n    "a": [\n        1,\n        true,\n        null\n    ]\n}'
    )


@pytest.mark.parametrize(
    ("fmt", "args", "expected"),
    [
        ("%-37v|", ("ab",), "ab" + " " * 35 + "|"),
        ("%12.12v", ("0123456789abcdef",), "0123456789ab"),
        ("%12.12v", ("abc",), "         abc"),
        ("%04.1f%%", (5.25,), "05.2%"),
        ("%8d", (524288,), "  524288"),
        ("%x %t %s", (255, True, None), "ff true <nil>"),
        ("%d", ("x",), "%!d(string=x)"),
        ("%s %s", ("a",), "a %!s(MISSING)"),
        ("%s", ("a", 2), "a%!(EXTRA int=2)"),
    ],
)
def test_sprintf(fmt: str, args: tuple[Any, ...], expected: str) -> None:
    assert go_sprintf(fmt, *args) == expected


def test_go_str_floats() -> None:
    assert go_str(1e21) == "1e+21"
    assert go_str(1.5e-7) == "1.5e-07"
    assert go_str(3.0) == "3"
