"""Run records in the object store, and `trending runs list|show|compare`."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.runs import app
from trending.modelling.runs import RunLog, RunNotFoundError, RunRecord
from trending.registry.objectstore import LocalObjectStore


def record(run_id: str, micro: float) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        model_name="genre-classifier",
        data_snapshot_id="snap-1",
        code_version="abc123",
        params={"xgboost": {"max_depth": 3}},
        metrics={"xgboost": {"micro_f1": micro}, "linear": {"micro_f1": 0.6}},
        champion="xgboost",
        artifacts={"card": "file:///tmp/card.html"},
    )


def test_run_log_round_trip_and_listing(tmp_path):
    log = RunLog(LocalObjectStore(tmp_path), "genre-classifier")
    log.write(record("run-a", 0.65))
    log.write(record("run-b", 0.70))
    assert (tmp_path / "models/genre-classifier/runs/run-a.json").is_file()
    assert log.get("run-b").metrics["xgboost"]["micro_f1"] == 0.70
    assert [r.run_id for r in log.list()] == ["run-a", "run-b"]
    with pytest.raises(RunNotFoundError, match="trending runs list"):
        log.get("nope")
    with pytest.raises(ValueError, match="invalid run id"):
        log.get("../escape")
    with pytest.raises(ValueError, match="not 'genre-classifier'"):
        log.write(record("run-c", 0.5).model_copy(update={"model_name": "other"}))


def test_cli_lists_shows_and_compares(tmp_path, monkeypatch):
    registry = tmp_path / "registry"
    monkeypatch.setenv("TRENDING_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRENDING_REGISTRY_URI", registry.as_uri())
    log = RunLog.from_uri(registry.as_uri(), "genre-classifier")
    log.write(record("run-a", 0.65))
    log.write(record("run-b", 0.70))
    runner = CliRunner()

    listed = runner.invoke(app, ["list"])
    assert listed.exit_code == 0, listed.output
    assert "run-a" in listed.output and "0.700" in listed.output

    shown = runner.invoke(app, ["show", "run-b"])
    assert shown.exit_code == 0 and '"snap-1"' in shown.output

    compared = runner.invoke(app, ["compare", "run-a", "run-b"], terminal_width=200)
    assert compared.exit_code == 0, compared.output
    assert "xgboost.micro_f1" in compared.output and "0.65" in compared.output

    missing = runner.invoke(app, ["show", "nope"])
    assert missing.exit_code == 1
