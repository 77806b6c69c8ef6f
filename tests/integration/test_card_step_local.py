"""The search and card steps run by kfp.local (each step a subprocess, artifacts passed by KFP):
the sealed bundle's card carries the packaged evidence and the run's own search."""

import json
import shutil
from pathlib import Path

import pytest
from kfp import dsl, local
from kfp.dsl import Artifact, Dataset, Model

from components.model_card import model_card
from components.search_params import search_params
from trending.modelling.bundle import verify_bundle
from trending.modelling.card import packaged_evidence
from trending.modelling.gate import GatePolicy, decide
from trending.modelling.training import evaluate_candidate, split_labelled

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:.*non-Python base image:RuntimeWarning"),
]

FIXED = {
    "n_estimators": 20,
    "max_depth": 3,
    "max_features": 2000,
    "char_features": 0,
    "stack_folds": 2,
}


def _gate_outputs(folder: Path, bundle_dir: Path, test_rows) -> dict[str, Path]:
    """What the gate step leaves for the card step: the bundle, its report folder, the verdict."""
    report = evaluate_candidate(
        bundle_dir, test_rows, out_dir=folder / "report", robustness_cases=5
    )
    decision = decide(report, baseline=report, policy=GatePolicy(must_beat_baseline=False))
    verdict = folder / "decision.json"
    verdict.write_text(json.dumps({"decisions": {"xgboost": decision.model_dump(mode="json")}}))
    return {"bundle": bundle_dir, "report": folder / "report", "decision": verdict}


def test_the_card_step_shows_the_packaged_evidence_and_the_runs_search(
    titles, trained_bundle, tmp_path
):
    train_rows, test_rows = split_labelled(titles, test_size=0.2, seed=3)
    train = tmp_path / "train.parquet"
    train_rows.to_parquet(train, index=False)
    bundle_dir = tmp_path / "bundle"
    shutil.copytree(trained_bundle, bundle_dir)
    given = _gate_outputs(tmp_path, bundle_dir, test_rows)

    @dsl.pipeline(name="card-step")
    def card_step(n_trials: int) -> Model:
        searched = search_params(
            train=dsl.importer(artifact_uri=str(train), artifact_class=Dataset).output,
            family="xgboost",
            n_trials=n_trials,
            fixed_params_json=json.dumps(FIXED),
        )
        card = model_card(
            bundle=dsl.importer(artifact_uri=str(given["bundle"]), artifact_class=Model).output,
            report=dsl.importer(artifact_uri=str(given["report"]), artifact_class=Artifact).output,
            decision=dsl.importer(
                artifact_uri=str(given["decision"]), artifact_class=Artifact
            ).output,
            family="xgboost",
            search=searched.outputs["trials"],
        )
        return card.outputs["carded"]

    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(tmp_path / "kfp"),
        raise_on_error=True,
    )
    shipped = packaged_evidence("xgboost")
    cards = {}
    for n_trials in (0, 2):
        carded = Path(card_step(n_trials=n_trials).output.path)
        verify_bundle(carded)
        cards[n_trials] = (
            json.loads((carded / "card" / "model_card.json").read_text()),
            (carded / "card" / "model_card.md").read_text(),
        )

    kept, kept_md = cards[0]
    assert kept["feature_groups"] == shipped["feature_groups"]
    assert kept["staleness"] == shipped["staleness"]
    assert kept["search"] == shipped["search"]
    assert "## Hyper-parameter search (recorded; set the defaults)" in kept_md
    searched, searched_md = cards[2]
    assert searched["search"]["source"] == "run" and searched["search"]["trials"] == 2
    assert searched["feature_groups"] == shipped["feature_groups"]
    assert "## Hyper-parameter search (this run)" in searched_md
