"""The service programs' settings (serving/settings.py): one field, two faces, one-line errors."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from pydantic import Field, SecretStr

from serving.settings import (
    ServiceSettings,
    build_settings,
    load_settings,
    platform_variables,
    settings_parser,
)


class ExampleSettings(ServiceSettings):
    """A program with a range-checked number, an optional path and a secret."""

    max_versions: int = Field(4, ge=1, description="Versions kept.")
    interval: float = Field(10.0, gt=0, description="Seconds between checks.")
    cache_dir: Path | None = Field(None, description="Scratch folder.")
    api_token: SecretStr | None = Field(None, description="From a Secret.")


def _load(argv: list[str], environ: dict[str, str]) -> ExampleSettings:
    parser = settings_parser(ExampleSettings, prog="svc")
    return load_settings(ExampleSettings, parser, argv, environ)[1]


def test_a_flag_and_its_variable_are_one_field_and_the_flag_wins():
    assert _load([], {}).max_versions == 4
    assert _load([], {"TRENDING_MAX_VERSIONS": "2"}).max_versions == 2
    assert _load(["--max_versions", "3"], {"TRENDING_MAX_VERSIONS": "2"}).max_versions == 3
    assert _load(["--cache_dir", "/x"], {}).cache_dir == Path("/x")


def test_platform_variables_are_known_to_every_program():
    settings = _load([], {"TRENDING_HOME": "/tmp/h", "TRENDING_MODEL_NAME": "m"})
    assert settings.max_versions == 4
    assert {"TRENDING_HOME", "TRENDING_REGISTRY_URI"} <= platform_variables()


def test_a_secret_has_a_variable_but_no_flag(capsys):
    assert _load([], {"TRENDING_API_TOKEN": "s3cret"}).api_token.get_secret_value() == "s3cret"
    with pytest.raises(SystemExit) as exit_info:
        _load(["--api_token", "s3cret"], {})
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --api_token" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["--max_versions", "0"], {}, "svc: error: --max_versions must be at least 1, got 0"),
        (["--interval", "0"], {}, "svc: error: --interval must be above 0, got 0"),
        (["--interval", "-2.5"], {}, "svc: error: --interval must be above 0, got -2.5"),
        ([], {"TRENDING_INTERVAL": "0"}, "svc: error: TRENDING_INTERVAL must be above 0, got 0"),
        (["--interval", "soon"], {}, "svc: error: --interval: Input should be a valid number"),
        (
            [],
            {"TRENDING_INTERVALL": "5"},
            "svc: error: unknown variable(s) TRENDING_INTERVALL: remove or rename",
        ),
        (["--intervall", "5"], {}, "svc: error: unrecognized arguments: --intervall 5"),
    ],
)
def test_bad_values_and_unknown_names_are_one_line_usage_errors(argv, environ, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _load(argv, environ)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1, err


def test_build_settings_names_the_unknown_variable():
    with pytest.raises(ValueError, match=r"TRENDING_MAX_VERSION\b"):
        build_settings(ExampleSettings, {}, {"TRENDING_MAX_VERSION": "3"})


def test_a_field_that_shadows_a_parent_flag_is_refused():
    import argparse

    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--interval")
    with pytest.raises(ValueError, match="--interval is already a flag"):
        settings_parser(ExampleSettings, prog="svc", parents=[parent])


@pytest.mark.parametrize(
    ("service", "argv", "message"),
    [
        ("drift", ["--bundle", "b", "--interval", "0"], "--interval must be above 0"),
        ("drift", ["--bundle", "b", "--max_versions", "0"], "--max_versions must be at least 1"),
        ("drift", ["--bundle", "b", "--window_size", "1"], "--window_size must be at least 2"),
        ("drift", ["--model-name", "m"], "unrecognized arguments: --model-name"),
        ("trigger", ["--check_interval", "0"], "--check_interval must be above 0"),
        ("trigger", ["--cooldown_seconds", "-1"], "--cooldown_seconds must be at least 0"),
        ("trigger", ["--min_new_rows", "-5"], "--min_new_rows must be at least 0"),
        ("trigger", ["--launcher", "cron"], "--launcher: Input should be 'local' or 'kfp'"),
        ("router", ["--split_file", "s.json", "--upstream_timeout", "0"], "must be above 0"),
        ("router", [], "--split_file (or TRENDING_SPLIT_FILE) is required"),
        ("signals", ["--port", "-1"], "--port must be at least 0"),
    ],
)
def test_services_refuse_out_of_range_flags(service, argv, message, capsys):
    program = importlib.import_module(f"serving.{service}.__main__")
    with pytest.raises(SystemExit) as exit_info:
        program.parse(argv, {})
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_drift_interval_from_the_environment_is_checked(capsys):
    from serving.drift.__main__ import parse

    with pytest.raises(SystemExit):
        parse(["--bundle", "b"], {"TRENDING_INTERVAL": "0"})
    assert "TRENDING_INTERVAL must be above 0, got 0" in capsys.readouterr().err


def test_the_old_drift_variable_names_are_refused_by_name(capsys):
    from serving.drift.__main__ import parse

    with pytest.raises(SystemExit):
        parse(["--bundle", "b"], {"TRENDING_DRIFT_INTERVAL": "5"})
    assert "unknown variable(s) TRENDING_DRIFT_INTERVAL" in capsys.readouterr().err


def test_a_predictor_without_its_alias_says_so_in_one_line(tmp_path):
    from serving.predictor.__main__ import main

    registry = (tmp_path / "registry").as_uri()
    with pytest.raises(SystemExit) as exit_info:
        main(["--model_name", "m", "--registry_uri", registry, "--ref", "production"])
    message = str(exit_info.value.code)
    assert message.startswith("python -m serving.predictor: error: cannot load the model: ")
    assert "production" in message and "\n" not in message
