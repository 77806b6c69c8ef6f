"""`trending pipeline run training` ends with what the gate decided; no champion exits 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from report_builders import make_report

from cli.pipeline import _training_summary
from trending.modelling.gate import GatePolicy
from trending.modelling.runs import RunLog
from trending.rollout.release import judge_candidates, record_run

MODEL = "genre-classifier"


def run_with(tmp_path: Path, candidates, *, registered: int | None) -> tuple[Path, dict]:
    """A gate decision file and its run record, as the gate and register steps leave them."""
    uri = (tmp_path / "registry").as_uri()
    baseline = make_report("linear", micro=0.6)
    decisions, choice = judge_candidates(
        candidates, baseline=baseline, production=None, policy=GatePolicy()
    )
    log = RunLog.from_uri(uri, MODEL)
    run = record_run(
        log,
        choice=choice,
        decisions=decisions,
        reports=[*candidates, baseline],
        production=None,
        params={},
    )
    if registered is not None:
        log.write(run.model_copy(update={"registered_version": registered}))
    verdict = {
        "run_id": run.run_id,
        "choice": choice.model_dump(),
        "decisions": {f: d.model_dump() for f, d in decisions.items()},
    }
    path = tmp_path / "decision.json"
    path.write_text(json.dumps(verdict, default=str))
    return path, {"registry_uri": uri, "model_name": MODEL}


def test_a_champion_is_named_with_every_family_and_the_registered_version(tmp_path, capsys):
    path, arguments = run_with(
        tmp_path,
        [make_report("xgboost", micro=0.66), make_report("bert", micro=0.7, ece=0.4)],
        registered=1,
    )
    _training_summary(path, arguments, tmp_path / "training.log")
    out = capsys.readouterr().out
    assert "champion: xgboost" in out
    assert "bert: micro-F1 0.700" in out and "gate FAILED: calibration:ece" in out
    assert "linear (not a candidate): micro-F1 0.600" in out
    assert "registered: version 1 (xgboost)" in out


def test_no_champion_exits_1_with_gate_failed_error_and_registers_nothing(tmp_path, capsys):
    path, arguments = run_with(
        tmp_path,
        [make_report("xgboost", micro=0.55), make_report("bert", ece=0.4)],
        registered=None,
    )
    with pytest.raises(typer.Exit) as stopped:
        _training_summary(path, arguments, tmp_path / "training.log")
    assert stopped.value.exit_code == 1
    captured = capsys.readouterr()
    assert "no champion" in captured.out and "registered: nothing" in captured.out
    assert "gate failed for xgboost" in captured.err + captured.out
    assert "gate failed for bert" in captured.err + captured.out
