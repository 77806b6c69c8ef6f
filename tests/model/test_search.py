"""The seeded hyper-parameter search: reproducible trials, recorded in the run record, run as a
KFP step body (a budget of 0 keeps the defaults), and the shipped XGBoost defaults are the best of
the recorded dev-data search."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kfp.dsl import Artifact, Dataset

from components.record_search import record_search
from components.search_params import search_params
from trending.data.synthetic import generate_titles
from trending.modelling.families.xgboost import DEFAULT_PARAMS as XGBOOST_DEFAULTS
from trending.modelling.runs import RunLog, RunRecord
from trending.modelling.search import SEARCH_SPACES, params_for_training, search_family

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "models.json"


@pytest.fixture(scope="module")
def titles():
    return generate_titles(240, seed=21)


def _outcome(result):
    return [(t.params, t.micro_f1) for t in result.trials]


def test_the_search_is_seeded_starts_from_the_defaults_and_keeps_the_best(titles):
    first = search_family(titles, "linear", n_trials=4, seed=3)
    again = search_family(titles, "linear", n_trials=4, seed=3)
    other_seed = search_family(titles, "linear", n_trials=4, seed=4)

    assert _outcome(first) == _outcome(again)
    assert _outcome(first) != _outcome(other_seed)
    assert first.trials[0].params == {"c": 1.0, "ngram_max": 2}  # the defaults come first
    assert first.best_micro_f1 == max(t.micro_f1 for t in first.trials)
    assert len({json.dumps(t.params, sort_keys=True) for t in first.trials}) > 1
    for name, spec in SEARCH_SPACES["linear"].items():
        assert all(spec[1] <= t.params[name] <= spec[2] for t in first.trials)


def test_bad_requests_say_what_to_fix(titles):
    with pytest.raises(ValueError, match="no search space for family 'gpt'"):
        search_family(titles, "gpt")
    with pytest.raises(ValueError, match="n_trials must be at least 1"):
        search_family(titles, "linear", n_trials=0)


def test_a_parameter_the_caller_fixes_is_not_searched(titles):
    result = search_family(titles, "linear", n_trials=3, seed=3, fixed_params={"ngram_max": 1})
    assert all(set(t.params) == {"c"} for t in result.trials)
    assert "ngram_max" not in result.best_params


def _run_log(tmp_path):
    runs = RunLog.from_uri(f"file://{tmp_path}/runs", "genre-classifier")
    runs.write(RunRecord(run_id="r1", model_name="genre-classifier", champion="linear"))
    decision = Artifact(name="decision", uri=str(tmp_path / "decision.json"))
    Path(decision.path).write_text(json.dumps({"run_id": "r1"}))
    return runs, decision


def _record_search(trials, tmp_path):
    """The record-search step's body on the run log of ``_run_log``; returns that log."""
    runs, decision = _run_log(tmp_path)
    record_search.python_func(
        search=trials,
        decision=decision,
        registry_uri=f"file://{tmp_path}/runs",
        model_name="genre-classifier",
    )
    return runs


def test_the_step_returns_the_best_params_and_its_trials_go_into_the_run_record(titles, tmp_path):
    train = Dataset(name="train", uri=str(tmp_path / "train"))
    titles.to_parquet(train.path, index=False)
    trials = Artifact(name="trials", uri=str(tmp_path / "trials"))

    best = json.loads(
        search_params.python_func(
            train=train,
            trials=trials,
            family="linear",
            n_trials=3,
            fixed_params_json='{"max_features": 3000}',
        )
    )
    step = json.loads(Path(trials.path).read_text())
    assert best == step["params"] == {"max_features": 3000, **step["search"]["best_params"]}
    assert len(step["search"]["trials"]) == 3
    assert trials.metadata["best_micro_f1"] == step["search"]["best_micro_f1"]

    runs = _record_search(trials, tmp_path)
    run = runs.get("r1")
    assert run.search["linear"]["search"]["trials"] == step["search"]["trials"]
    assert run.search["linear"]["params"] == best
    assert run.champion == "linear"  # the rest of the record is kept


def test_no_budget_keeps_the_callers_params_and_the_record_says_nothing_was_searched(tmp_path):
    trials = Artifact(name="trials", uri=str(tmp_path / "trials"))
    kept = search_params.python_func(
        train=Dataset(name="unread", uri=str(tmp_path / "no-such.parquet")),
        trials=trials,
        family="xgboost",
        n_trials=0,
        fixed_params_json='{"max_depth": 5}',
    )
    assert json.loads(kept) == {"max_depth": 5}
    runs = _record_search(trials, tmp_path)
    assert runs.get("r1").search == {
        "xgboost": {"family": "xgboost", "n_trials": 0, "params": {"max_depth": 5}, "search": None}
    }
    with pytest.raises(ValueError, match="search_trials must be 0"):
        params_for_training(None, "xgboost", n_trials=-1)


def test_xgboost_defaults_are_the_best_trial_of_the_recorded_dev_search():
    search = json.loads(RESULTS.read_text())["search"]["xgboost"]
    best = search["best_params"]
    assert best, "the recorded search has no best trial: run benchmarks/bench_search.py"
    assert {k: XGBOOST_DEFAULTS[k] for k in best} == pytest.approx(best, rel=0.01)
    assert search["best_micro_f1"] == max(t["micro_f1"] for t in search["trials"])
