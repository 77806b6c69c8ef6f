"""Numeric flags of the services are range-checked, from the command line and the environment."""

from __future__ import annotations

import argparse

import pytest

from serving.flags import parse_checked


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="svc")
    parser.add_argument("--max-versions", type=int, default=4)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--optional_cap", type=int, default=None)
    return parser


def test_values_in_range_pass_and_unset_or_absent_flags_are_skipped():
    args = parse_checked(
        _parser(),
        ["--max-versions", "1", "--interval", "0.5"],
        at_least={"--max-versions": 1, "--optional_cap": 1, "--not-a-flag": 3},
        above={"--interval": 0},
    )
    assert (args.max_versions, args.interval, args.optional_cap) == (1, 0.5, None)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--max-versions", "0"], "svc: error: --max-versions must be at least 1, got 0"),
        (["--interval", "0"], "svc: error: --interval must be above 0, got 0"),
        (["--interval", "-2.5"], "svc: error: --interval must be above 0, got -2.5"),
        (["--optional_cap", "0"], "svc: error: --optional_cap must be at least 1, got 0"),
    ],
)
def test_out_of_range_values_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_checked(
            _parser(),
            argv,
            at_least={"--max-versions": 1, "--optional_cap": 1},
            above={"--interval": 0},
        )
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("service", "argv", "message"),
    [
        ("drift", ["--bundle", "b", "--interval", "0"], "--interval must be above 0"),
        ("drift", ["--bundle", "b", "--max-versions", "0"], "--max-versions must be at least 1"),
        ("drift", ["--bundle", "b", "--window-size", "1"], "--window-size must be at least 2"),
        ("trigger", ["--check-interval", "0"], "--check-interval must be above 0"),
        ("trigger", ["--cooldown-seconds", "-1"], "--cooldown-seconds must be at least 0"),
        ("trigger", ["--min-new-rows", "-5"], "--min-new-rows must be at least 0"),
    ],
)
def test_services_refuse_out_of_range_flags(service, argv, message, capsys):
    import importlib

    with pytest.raises(SystemExit):
        importlib.import_module(f"serving.{service}.__main__").parse_args(argv)
    assert message in capsys.readouterr().err


def test_drift_interval_from_the_environment_is_checked(monkeypatch, capsys):
    from serving.drift.__main__ import parse_args

    monkeypatch.setenv("TRENDING_DRIFT_INTERVAL", "0")
    with pytest.raises(SystemExit):
        parse_args(["--bundle", "b"])
    assert "--interval must be above 0, got 0" in capsys.readouterr().err


def test_router_refuses_a_zero_upstream_timeout(monkeypatch, capsys):
    from serving.router.__main__ import main

    monkeypatch.setattr("sys.argv", ["router", "--split_file", "s.json", "--upstream_timeout", "0"])
    with pytest.raises(SystemExit):
        main()
    assert "python -m serving.router: error: --upstream_timeout must be above 0" in (
        capsys.readouterr().err
    )
