"""TRENDING_PIPELINE_PARAMS: typed pipeline parameters from the environment, checked like --param."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

import pipelines.run
from cli import app
from trending.settings import Settings

runner = CliRunner()


@pytest.fixture
def captured(monkeypatch, tmp_path) -> dict[str, Any]:
    """Run no pipeline: keep the arguments `trending pipeline run` would pass to kfp.local."""
    seen: dict[str, Any] = {}

    def fake_run_local(name, arguments, pipeline_root, log_path=None):
        seen.update(name=name, arguments=arguments)
        return "fake-output"

    monkeypatch.setattr(pipelines.run, "run_local", fake_run_local)
    monkeypatch.setenv("TRENDING_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    return seen


def test_json_object_becomes_string_params(monkeypatch):
    monkeypatch.setenv(
        "TRENDING_PIPELINE_PARAMS", '{"bert_params_json": {"epochs": 1}, "robustness_cases": 50}'
    )
    assert Settings().pipeline_params == {
        "bert_params_json": '{"epochs": 1}',
        "robustness_cases": "50",
    }


def test_default_is_empty():
    assert Settings().pipeline_params == {}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('{"epochs": 1', "is not valid JSON"),
        ('["epochs"]', "must be a JSON object, got list"),
    ],
)
def test_bad_json_is_a_clear_error(monkeypatch, value, expected):
    monkeypatch.setenv("TRENDING_PIPELINE_PARAMS", value)
    with pytest.raises(ValidationError, match=expected):
        Settings()


def test_bad_json_in_the_cli_is_an_invalid_setting(monkeypatch, captured):
    monkeypatch.setenv("TRENDING_PIPELINE_PARAMS", "{not json")
    result = runner.invoke(app, ["pipeline", "run", "continuous-training", "--reason", "drift"])
    assert result.exit_code == 2
    assert "TRENDING_PIPELINE_PARAMS" in result.output and "not valid JSON" in result.output
    assert captured == {}


def test_unknown_key_is_refused_before_running(monkeypatch, captured):
    monkeypatch.setenv("TRENDING_PIPELINE_PARAMS", '{"epochs": "1"}')
    result = runner.invoke(app, ["pipeline", "run", "continuous-training", "--reason", "drift"])
    assert result.exit_code == 1
    assert "TRENDING_PIPELINE_PARAMS" in result.output
    assert "has no parameter 'epochs'" in result.output
    assert captured == {}


def test_wrong_type_is_refused(monkeypatch, captured):
    monkeypatch.setenv("TRENDING_PIPELINE_PARAMS", '{"robustness_cases": "many"}')
    result = runner.invoke(app, ["pipeline", "run", "continuous-training"])
    assert result.exit_code == 1
    assert "robustness_cases='many' is not a valid Integer" in result.output


def test_params_are_typed_and_merged_under_param_overrides(monkeypatch, captured):
    monkeypatch.setenv(
        "TRENDING_PIPELINE_PARAMS",
        '{"bert_params_json": "{\\"epochs\\": 1}", "robustness_cases": "50", '
        '"drift_since": "2024-03-01T00:00:00Z"}',
    )
    result = runner.invoke(
        app,
        [
            "pipeline",
            "run",
            "continuous-training",
            "--reason",
            "drift",
            "--window",
            "drift_selected",
            "--param",
            "robustness_cases=20",
        ],
    )
    assert result.exit_code == 0, result.output
    arguments = captured["arguments"]
    assert arguments["bert_params_json"] == '{"epochs": 1}'
    assert arguments["drift_since"] == "2024-03-01T00:00:00Z"
    assert arguments["robustness_cases"] == 20  # --param wins, and the value is an int
    assert arguments["reason"] == "drift" and arguments["window"] == "drift_selected"
