"""The model card shows feature-group gains and costs, the search's best trial and the staleness
curve when the benchmarks recorded them, and nothing invented when they did not."""

from __future__ import annotations

import json

from report_builders import make_report

from trending.modelling.bundle import read_manifest
from trending.modelling.card import load_evidence, render_markdown, write_model_card
from trending.modelling.gate import GatePolicy, decide

MODELS = {
    "families": {"xgboost": {}},
    "ablation": {
        "metric": "micro average precision (held-out folds)",
        "data": "tmdb-movies-dev.parquet",
        "groups": {
            "plot_words": {"gain": 0.081, "noise": 0.004, "beneficial": True, "columns": 41000,
                           "nonzeros_per_title": 95.2, "serving_us_per_title": 180.5},
            "title": {"gain": 0.001, "noise": 0.003, "beneficial": False, "columns": 2100,
                      "nonzeros_per_title": 2.5, "serving_us_per_title": 40.1},
        },
    },
    "search": {"xgboost": {"best_params": {"max_depth": 4, "c": 2.5}, "best_micro_f1": 0.61,
                           "trials": [{"micro_f1": 0.6}, {"micro_f1": 0.61}], "data": "dev"}},
}  # fmt: skip
STALENESS = {"train_until": 2005, "families": {"xgboost": {"micro_f1_drop_per_year": 0.0012}}}


def test_recorded_gains_costs_search_and_staleness_appear_on_the_card(trained_bundle, tmp_path):
    (tmp_path / "models.json").write_text(json.dumps(MODELS))
    (tmp_path / "staleness.json").write_text(json.dumps(STALENESS))
    evidence = load_evidence(tmp_path, "xgboost")
    manifest = read_manifest(trained_bundle)
    report = make_report("xgboost", micro=0.6)
    gate = decide(report, baseline=make_report("linear", micro=0.5), policy=GatePolicy())
    paths = write_model_card(report, gate, manifest, tmp_path / "card", evidence=evidence)

    card = json.loads(paths.json_path.read_text())
    assert card["feature_groups"]["groups"]["plot_words"]["gain"] == 0.081
    assert card["search"] == {"best_params": {"max_depth": 4, "c": 2.5}, "best_micro_f1": 0.61,
                              "trials": 2, "data": "dev"}  # fmt: skip
    assert card["staleness"]["reference"] == "benchmarks/results/staleness.json"
    markdown = paths.markdown.read_text()
    assert "| plot_words | 0.081 | 0.004 | yes | 41000 | 95.200 | 180.500 |" in markdown
    assert "| title | 0.001 | 0.003 | no |" in markdown
    assert "| max_depth | 4 |" in markdown and "Best of 2 seeded trials" in markdown
    assert "Micro-F1 drop per year of release-year age: 0.001" in markdown
    assert "Feature groups: gain and serving cost" in paths.html.read_text()


def test_without_recorded_evidence_the_card_has_no_such_sections(trained_bundle, tmp_path):
    assert load_evidence(tmp_path, "xgboost") == {}
    assert load_evidence(tmp_path, "bert") == {}
    manifest = read_manifest(trained_bundle)
    report = make_report("xgboost", micro=0.6)
    gate = decide(report, baseline=make_report("linear", micro=0.5), policy=GatePolicy())
    markdown = render_markdown(report, gate, manifest, load_evidence(tmp_path, "xgboost"))
    assert "Feature groups" not in markdown and "Hyper-parameter search" not in markdown
