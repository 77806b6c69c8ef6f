"""The model card shows feature-group gains and costs, the search's best trial and the staleness
curve (with the ModelStale threshold and why) when the benchmarks recorded them, and nothing
invented when they did not; the package ships that evidence, and it cannot drift from the
recorded results."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from report_builders import make_report

from trending.modelling.bundle import read_manifest
from trending.modelling.card import (
    load_evidence,
    packaged_evidence,
    packaged_evidence_path,
    render_markdown,
    write_model_card,
)
from trending.modelling.gate import GatePolicy, decide

ROOT = Path(__file__).resolve().parents[2]
MODELS = {
    "families": {"xgboost": {}},
    "ablation": {
        "metric": "micro average precision (held-out folds)",
        "data": "tmdb-movies-dev.parquet",
        "groups": {
            "plot_words": {
                "gain": 0.081,
                "noise": 0.004,
                "beneficial": True,
                "columns": 41000,
                "nonzeros_per_title": 95.2,
                "serving_us_per_title": 180.5,
            },
            "title": {
                "gain": 0.001,
                "noise": 0.003,
                "beneficial": False,
                "columns": 2100,
                "nonzeros_per_title": 2.5,
                "serving_us_per_title": 40.1,
                "reason": "titles carry little genre",
            },
        },
    },
    "search": {
        "xgboost": {
            "best_params": {"max_depth": 4, "c": 2.5},
            "best_micro_f1": 0.61,
            "trials": [{"micro_f1": 0.6}, {"micro_f1": 0.61}],
            "data": "dev",
            "rows": 900,
            "seed": 7,
            "date": "2026-01-02",
        }
    },
}
STALENESS = {
    "train_until": 2005,
    "families": {
        "xgboost": {
            "micro_f1_drop_per_year": 0.0012,
            "points": [
                {
                    "window": "<= 2005 (held out)",
                    "years_after_training": 0,
                    "rows": 9,
                    "micro_f1": 0.6,
                    "micro_f1_drop": 0.0,
                },
                {
                    "window": "2006-2009",
                    "years_after_training": 2.5,
                    "rows": 9,
                    "micro_f1": 0.597,
                    "micro_f1_drop": 0.003,
                },
            ],
        },
        "linear": {"micro_f1_drop_per_year": 0.004, "points": []},
    },
}


def _results(folder: Path, models=MODELS, staleness=STALENESS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "models.json").write_text(json.dumps(models))
    (folder / "staleness.json").write_text(json.dumps(staleness))
    return folder


def _card(trained_bundle, out: Path, evidence):
    manifest = read_manifest(trained_bundle)
    report = make_report("xgboost", micro=0.6)
    gate = decide(report, baseline=make_report("linear", micro=0.5), policy=GatePolicy())
    return write_model_card(report, gate, manifest, out, evidence=evidence)


def test_recorded_gains_costs_search_and_staleness_appear_on_the_card(trained_bundle, tmp_path):
    evidence = load_evidence(_results(tmp_path / "results"), "xgboost", model_stale_days=30)
    paths = _card(trained_bundle, tmp_path / "card", evidence)

    card = json.loads(paths.json_path.read_text())
    assert card["feature_groups"]["groups"]["plot_words"]["gain"] == 0.081
    assert card["search"]["source"] == "recorded"
    assert card["search"]["best_params"] == {"max_depth": 4, "c": 2.5}
    assert (card["search"]["trials"], card["search"]["best_micro_f1"]) == (2, 0.61)
    assert card["staleness"]["reference"] == "benchmarks/results/staleness.json"
    # 0.02 micro-F1 at 0.004 a year (linear, the steepest curve): 1826 days.
    assert card["staleness"]["model_stale"]["days_until_tolerance"] == 1826
    markdown = paths.markdown.read_text()
    assert "| plot_words | 0.081 | 0.004 | yes | 41000 | 95.200 | 180.500 | — |" in markdown
    assert "| title | 0.001 | 0.003 | no | 2100 | 2.500 | 40.100 | titles carry little genre |" in (
        markdown
    )
    assert "## Hyper-parameter search (recorded; set the defaults)" in markdown
    assert "This run did no search" in markdown and "best of 2 seeded trials" in markdown
    # The session's bundle was trained with max_depth 3 (tests/conftest.py FAST_XGBOOST).
    assert "| max_depth | 4 | 3 |" in markdown and "parameters differ from them" in markdown
    assert "Micro-F1 drop per year of release-year age: 0.00120" in markdown
    assert "| 2006-2009 | 2.500 | 0.597 | 0.003 |" in markdown
    assert "ModelStale threshold: 30 days. ModelStale fires after 30 days, long before" in markdown
    assert "1826 days at the steepest, linear" in markdown
    assert "Feature groups: gain and serving cost" in paths.html.read_text()


def test_a_threshold_beyond_the_recorded_decay_is_called_out(tmp_path):
    evidence = load_evidence(_results(tmp_path), "xgboost", model_stale_days=2000)
    why = evidence["staleness"]["model_stale"]["why"]
    assert "waits 2000 days, longer than the 1826 days" in why and "lower the threshold" in why


def test_a_family_without_its_own_curve_or_search_says_so(trained_bundle, tmp_path):
    evidence = load_evidence(_results(tmp_path / "results"), "bert", model_stale_days=30)
    assert evidence["search"]["source"] == "none"
    markdown = _card(trained_bundle, tmp_path / "card", evidence).markdown.read_text()
    assert "no recorded search set xgboost's default parameters" in markdown
    assert "Not measured for xgboost; the recorded curves" in markdown
    assert "are linear, xgboost" in markdown


def test_without_recorded_evidence_the_card_has_no_such_sections(trained_bundle, tmp_path):
    assert load_evidence(tmp_path, "xgboost") == {}
    assert load_evidence(tmp_path, "bert") == {}
    manifest = read_manifest(trained_bundle)
    report = make_report("xgboost", micro=0.6)
    gate = decide(report, baseline=make_report("linear", micro=0.5), policy=GatePolicy())
    markdown = render_markdown(report, gate, manifest, load_evidence(tmp_path, "xgboost"))
    assert "Feature groups" not in markdown and "Hyper-parameter search" not in markdown
    assert "Staleness" not in markdown


def _producer(*args: str) -> subprocess.CompletedProcess:
    """``python -m benchmarks.evidence`` (the producer) from the repository root."""
    command = [sys.executable, "-m", "benchmarks.evidence", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_the_packaged_evidence_is_what_the_recorded_results_give(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))  # the producer lives in benchmarks/, not the package
    producer = importlib.import_module("benchmarks.evidence")
    assert json.loads(packaged_evidence_path().read_text()) == producer.build_evidence(), (
        "trending/modelling/evidence.json is out of date with benchmarks/results or the "
        "ModelStale rule: run `python -m benchmarks.evidence` and commit the file"
    )
    # What the check compares is what the benchmarks recorded, not an empty shell.
    models = json.loads((ROOT / "benchmarks" / "results" / "models.json").read_text())
    shipped = packaged_evidence("xgboost")
    groups = shipped["feature_groups"]["groups"]
    assert groups["plot_words"]["gain"] == models["ablation"]["groups"]["plot_words"]["gain"]
    assert shipped["search"]["best_params"] == models["search"]["xgboost"]["best_params"]
    rules = (ROOT / "monitoring" / "rules" / "trending.rules.yml").read_text()
    days = shipped["staleness"]["model_stale"]["threshold_days"]
    assert f"> {days} * 86400" in rules


@pytest.mark.tools  # runs `python -m benchmarks.evidence` three times
def test_the_evidence_check_fails_a_stale_file(tmp_path):
    results = _results(tmp_path / "results")
    output = tmp_path / "evidence.json"
    command = [
        sys.executable,
        "-m",
        "benchmarks.evidence",
        "--results",
        str(results),
        "--output",
        str(output),
    ]
    stale = subprocess.run([*command, "--check"], cwd=ROOT, capture_output=True, text=True)
    assert stale.returncode == 1 and "out of date" in stale.stdout
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    assert packaged_evidence("xgboost", output)["search"]["best_params"] == {
        "max_depth": 4,
        "c": 2.5,
    }
    fresh = subprocess.run([*command, "--check"], cwd=ROOT, capture_output=True, text=True)
    assert fresh.returncode == 0, fresh.stdout


@pytest.mark.tools
def test_the_evidence_file_ships_in_the_package(tmp_path):
    """Build the packages as the component image does (its COPY set, then setuptools)."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("cli", "trending", "components", "pipelines", "serving"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    built = tmp_path / "lib"
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from setuptools import setup; setup()",
            "-q",
            "build_py",
            "--build-lib",
            str(built),
        ],
        cwd=source,
        check=True,
        capture_output=True,
    )
    shipped = built / "trending" / "modelling" / "evidence.json"
    assert shipped.is_file(), "evidence.json is not package data: see pyproject.toml"
    assert shipped.read_text() == packaged_evidence_path().read_text()
