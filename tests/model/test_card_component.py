"""The pipeline's card step (components/model_card.py, its body as KFP runs it) puts the packaged
evidence on every card, and the run's own search when the run searched the champion's family."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from kfp.dsl import HTML, Artifact, Dataset, Markdown, Model
from report_builders import make_report

import trending.modelling.card.evidence as card_module
from components.model_card import model_card
from components.search_params import search_params
from trending.modelling.bundle import verify_bundle
from trending.modelling.card import packaged_evidence, packaged_evidence_path
from trending.modelling.gate import GatePolicy, decide
from trending.modelling.training import split_labelled, train_bundle

# The session's bundle (tests/conftest.py) was trained with these over the family's defaults.
FAST_XGBOOST = {"n_estimators": 25, "max_depth": 3, "max_features": 2000}


def card_inputs(folder: Path, bundle_dir: Path, family: str = "xgboost") -> dict:
    """The card step's inputs as the gate step leaves them: bundle, report folder, decision."""
    bundle = Model(name="bundle", uri=str(folder / "bundle"))
    shutil.copytree(bundle_dir, bundle.path)
    report = make_report(family, micro=0.6)
    report.write(folder / "report" / "report.json")
    decision = decide(report, baseline=make_report("linear", micro=0.5), policy=GatePolicy())
    verdict = folder / "decision.json"
    verdict.write_text(json.dumps({"decisions": {family: decision.model_dump(mode="json")}}))
    return {
        "bundle": bundle,
        "report": Artifact(name="report", uri=str(folder / "report")),
        "decision": Artifact(name="decision", uri=str(verdict)),
        "family": family,
    }


def run_card_step(folder: Path, bundle_dir: Path, **extra) -> tuple[dict, str, Path]:
    """Run the step's body; return the card JSON, the Markdown output and the sealed bundle."""
    carded = Model(name="carded", uri=str(folder / "carded"))
    markdown = Markdown(name="md", uri=str(folder / "card.md"))
    model_card.python_func(
        **card_inputs(folder, bundle_dir),
        carded=carded,
        card_markdown=markdown,
        card_html=HTML(name="html", uri=str(folder / "card.html")),
        **extra,
    )
    verify_bundle(Path(carded.path))
    card = json.loads((Path(carded.path) / "card" / "model_card.json").read_text())
    return card, Path(markdown.path).read_text(), Path(carded.path)


def test_every_card_carries_the_packaged_evidence(trained_bundle, tmp_path):
    card, markdown, _ = run_card_step(tmp_path, trained_bundle)

    shipped = packaged_evidence("xgboost")
    assert shipped, "the package ships no evidence for xgboost: run python -m benchmarks.evidence"
    assert card["feature_groups"] == shipped["feature_groups"]
    assert card["staleness"] == shipped["staleness"]
    assert card["search"] == shipped["search"] and card["search"]["source"] == "recorded"
    words = shipped["feature_groups"]["groups"]["plot_words"]
    assert f"| plot_words | {words['gain']:.3f} | {words['noise']:.3f} | yes |" in markdown
    assert "## Hyper-parameter search (recorded; set the defaults)" in markdown
    assert f"best of {shipped['search']['trials']} seeded trials" in markdown
    days = shipped["staleness"]["model_stale"]["threshold_days"]
    assert f"ModelStale threshold: {days} days." in markdown


def test_a_changed_evidence_file_changes_the_card(trained_bundle, tmp_path, monkeypatch):
    changed = json.loads(packaged_evidence_path().read_text())
    changed["families"]["xgboost"]["feature_groups"]["groups"]["plot_words"]["gain"] = 0.4321
    changed["families"]["xgboost"]["staleness"]["model_stale"]["why"] = "because we said so"
    evidence = tmp_path / "evidence.json"
    evidence.write_text(json.dumps(changed))
    monkeypatch.setattr(card_module, "packaged_evidence_path", lambda: evidence)

    card, markdown, _ = run_card_step(tmp_path / "step", trained_bundle)

    assert card["feature_groups"]["groups"]["plot_words"]["gain"] == 0.4321
    assert "| plot_words | 0.432 |" in markdown and "because we said so" in markdown


@pytest.fixture(scope="module")
def searched(tmp_path_factory, titles):
    """The search step on the session's training rows (2 trials), and a bundle trained as the
    pipeline then trains it: with the parameters the step returned."""
    folder = tmp_path_factory.mktemp("searched")
    train_rows, _ = split_labelled(titles, test_size=0.2, seed=3)
    train = Dataset(name="train", uri=str(folder / "train.parquet"))
    train_rows.to_parquet(train.path, index=False)
    trials = Artifact(name="trials", uri=str(folder / "trials.json"))
    fixed = {**FAST_XGBOOST, "char_features": 0, "stack_folds": 2}
    params = json.loads(
        search_params.python_func(
            train=train,
            trials=trials,
            family="xgboost",
            n_trials=2,
            fixed_params_json=json.dumps(fixed),
        )
    )
    bundle = folder / "bundle"
    train_bundle(train_rows, bundle, params=params, data_snapshot_id="snap-test")
    return trials, bundle, json.loads(Path(trials.path).read_text())


def test_a_run_that_searched_shows_its_own_best_trial(searched, tmp_path):
    trials, bundle, step = searched
    card, markdown, _ = run_card_step(tmp_path, bundle, search=trials)

    assert step["search"] is not None and len(step["search"]["trials"]) == 2
    assert card["search"]["source"] == "run"
    assert card["search"]["best_params"] == step["search"]["best_params"]
    assert card["search"]["trials"] == 2
    assert "## Hyper-parameter search (this run)" in markdown
    assert "This run searched: the best of 2 seeded trials (seed 7)" in markdown
    assert "This model was trained with them." in markdown
    # The rest of the evidence is still the packaged one.
    assert card["feature_groups"] == packaged_evidence("xgboost")["feature_groups"]


def test_a_search_of_another_family_or_none_keeps_the_recorded_search(
    trained_bundle, searched, tmp_path
):
    _, _, step = searched
    kept = Artifact(name="kept", uri=str(tmp_path / "kept.json"))
    kept_params = search_params.python_func(
        train=Dataset(name="unread", uri=str(tmp_path / "absent.parquet")),
        trials=kept,
        family="xgboost",
        n_trials=0,
        fixed_params_json='{"max_depth": 3}',
    )
    assert json.loads(kept_params) == {"max_depth": 3}  # handed through, nothing searched

    card, markdown, _ = run_card_step(tmp_path / "kept", trained_bundle, search=kept)
    assert card["search"]["source"] == "recorded"
    assert "This run did no search." in markdown

    other = tmp_path / "bert-search.json"
    other.write_text(json.dumps({**step, "family": "bert"}))
    card, _, _ = run_card_step(
        tmp_path / "other", trained_bundle, search=Artifact(name="o", uri=str(other))
    )
    assert card["search"]["source"] == "recorded"
