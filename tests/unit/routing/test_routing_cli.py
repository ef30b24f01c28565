"""``airflow muxly conditions test``: the match per record, or the error with a caret, exit code 1."""

from __future__ import annotations

import argparse

import pytest

from muxly_provider.cli.routing_command import test_condition as run_condition


def run(expression: str, data: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        run_condition(argparse.Namespace(expression=expression, data=data))
    except SystemExit as exc:
        return int(exc.code or 0), capsys.readouterr().out
    return 0, capsys.readouterr().out


@pytest.mark.parametrize(
    ("expression", "data", "expected"),
    [
        ("revenue > 1000 AND country == 'US'", '{"revenue": 1500, "country": "US"}', "MATCH\n"),
        ("revenue > 1000 AND country == 'US'", '{"revenue": "1500", "country": "FR"}', "NO MATCH\n"),
        (
            "NOT status == 'cancelled'",
            '[{"status": "cancelled"}, {"status": "done"}, {}]',
            "[0] NO MATCH\n[1] MATCH\n[2] MATCH\n",
        ),
        ("EXISTS shipping_address", '[{"shipping_address": null}, 5]', "[0] MATCH\n[1] NO MATCH\n"),
        ("$.user.profile.country == 'US'", '{"user": {"profile": {"country": "US"}}}', "MATCH\n"),
    ],
)
def test_matches(expression: str, data: str, expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(expression, data, capsys) == (0, expected)


def test_bad_expression_prints_caret_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run("revenue > 'abc", "{}", capsys)
    assert code == 1
    assert out.splitlines() == [
        "Invalid condition: unterminated string at position 10",
        "revenue > 'abc",
        "          ^",
    ]


@pytest.mark.parametrize("data", ["{not json", "42"])
def test_bad_data_exits_1(data: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run("a == 1", data, capsys)
    assert code == 1 and "--data" in out
