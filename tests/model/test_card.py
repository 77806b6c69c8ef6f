"""The model card holds intended use, lineage, metrics, slices, calibration, robustness,
thresholds, limitations and the gate decision, in HTML, JSON and Markdown."""

from __future__ import annotations

import json

from report_builders import make_report

from trending.modelling.bundle import read_manifest
from trending.modelling.card import render_markdown, write_model_card
from trending.modelling.evaluation import write_plots
from trending.modelling.gate import GatePolicy, decide


def test_card_contents(trained_bundle, tmp_path):
    manifest = read_manifest(trained_bundle)
    report = make_report("xgboost", micro=0.55, tv_micro=0.3)
    report = report.model_copy(update={"plots": write_plots(report, tmp_path / "plots")})
    gate = decide(report, baseline=make_report("linear", micro=0.5), policy=GatePolicy())
    paths = write_model_card(report, gate, manifest, tmp_path / "card")

    card = json.loads(paths.json_path.read_text())
    assert card["lineage"]["data_snapshot_id"] == "snap-test"
    assert card["lineage"]["code_version"] == manifest.code_version
    assert card["metrics"]["overall"]["micro_f1"] == 0.55
    assert card["thresholds"] == dict(zip(manifest.genres, manifest.thresholds, strict=True))
    assert {s["name"] for s in card["slices"]} >= {"kind=movie", "kind=tv"}
    assert card["calibration"]["ece"] == 0.05
    assert card["robustness"][0]["name"] == "invariance:names"
    assert card["gate"]["passed"] is False
    assert "slice:kind=tv" in {c["name"] for c in card["gate"]["checks"] if not c["passed"]}
    assert card["intended_use"] and card["limitations"]

    page = paths.html.read_text()
    assert "Gate decision: FAILED" in page
    assert page.count("data:image/png;base64,") == 3  # reliability, per-genre F1, slices
    assert "Limitations" in page and "Intended use" in page

    markdown = render_markdown(report, gate, manifest)
    assert markdown == paths.markdown.read_text()
    assert "| slice:kind=tv | FAIL |" in markdown
    assert "## Calibration" in markdown and "Expected calibration error: 0.050" in markdown
