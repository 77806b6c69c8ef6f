"""The model card of a registered version: HTML (with the plots inlined) + JSON + Markdown.

The card states intended use, data snapshot and lineage, metrics and slices, calibration,
robustness, thresholds, limitations and the gate decision, all read from the bundle manifest, the
``EvaluationReport`` and the ``GateDecision``. ``render_markdown`` gives the same content for
KFP's ``dsl.Markdown`` output.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from trending.modelling.bundle import BundleManifest
from trending.modelling.evaluation import EvaluationReport
from trending.modelling.gate import GateDecision

INTENDED_USE = (
    "Suggest genres (multi-label, TMDb's 19 genres) for movies and TV shows from their plot "
    "summary and reviews, for catalogue tagging and discovery. Scores are per genre; a genre is "
    "predicted when its score reaches that genre's tuned threshold."
)
LIMITATIONS = (
    "Trained on English TMDb-style plots; other languages, very short plots and titles far from "
    "the training distribution get less reliable genres (see the slices).",
    "Rare genres (few training titles) have lower and noisier F1 than frequent ones.",
    "Labels come from a community database and are incomplete and subjective; the model learns "
    "their biases.",
    "Thresholds are tuned for per-genre F1 on a validation split; other trade-offs need retuning.",
    "Not for decisions about people: the model describes content, not audiences.",
)


STALENESS_RESULTS = "benchmarks/results/staleness.json"


def load_evidence(results_dir: Path, family: str) -> dict[str, Any]:
    """What the benchmarks measured for ``family``: feature groups, search, staleness.

    Reads ``models.json`` (keys ``ablation`` and ``search``) and ``staleness.json`` in
    ``results_dir`` (benchmarks/results); a missing file or key leaves that part out.
    """

    def read(name: str) -> dict[str, Any]:
        path = Path(results_dir) / name
        return json.loads(path.read_text()) if path.is_file() else {}

    models, staleness = read("models.json"), read("staleness.json")
    evidence: dict[str, Any] = {}
    if ablation := models.get("ablation"):
        evidence["feature_groups"] = {
            "metric": ablation.get("metric"),
            "data": ablation.get("data"),
            "groups": ablation.get("groups", {}),
        }
    if search := models.get("search", {}).get(family):
        evidence["search"] = {
            "best_params": search.get("best_params"),
            "best_micro_f1": search.get("best_micro_f1"),
            "trials": len(search.get("trials", [])),
            "data": search.get("data"),
        }
    if curve := staleness.get("families", {}).get(family):
        evidence["staleness"] = {
            "reference": STALENESS_RESULTS,
            "micro_f1_drop_per_year": curve.get("micro_f1_drop_per_year"),
            "train_until": staleness.get("train_until"),
        }
    return evidence


def _evidence_sections(
    evidence: Mapping[str, Any],
) -> list[tuple[str, str, list[str], list[list[Any]]]]:
    sections: list[tuple[str, str, list[str], list[list[Any]]]] = []
    if groups := evidence.get("feature_groups"):
        sections.append(
            (
                "Feature groups: gain and serving cost",
                f"Gain: drop of {groups.get('metric')} when the group is left out "
                f"({groups.get('data')}); a gain not above its noise does not show the group helps.",
                ["group", "gain", "noise", "helps", "columns", "non-zeros/title", "µs/title"],
                [
                    [
                        name,
                        g.get("gain"),
                        g.get("noise"),
                        "yes" if g.get("beneficial") else "no",
                        g.get("columns"),
                        g.get("nonzeros_per_title"),
                        g.get("serving_us_per_title"),
                    ]
                    for name, g in groups.get("groups", {}).items()
                ],
            )
        )
    if search := evidence.get("search"):
        sections.append(
            (
                "Hyper-parameter search",
                f"Best of {search.get('trials')} seeded trials on {search.get('data')}: "
                f"micro-F1 {_fmt(search.get('best_micro_f1'))} on the held-out rows.",
                ["parameter", "best value"],
                [[k, v] for k, v in (search.get("best_params") or {}).items()],
            )
        )
    if stale := evidence.get("staleness"):
        sections.append(
            (
                "Staleness",
                f"Micro-F1 drop per year of release-year age: "
                f"{_fmt(stale.get('micro_f1_drop_per_year'))} (trained on titles up to "
                f"{stale.get('train_until')}); curve: {stale.get('reference')}.",
                [],
                [],
            )
        )
    return sections


class ModelCardPaths(BaseModel):
    """Where the card was written."""

    html: Path
    json_path: Path
    markdown: Path


def card_content(
    report: EvaluationReport,
    gate: GateDecision,
    manifest: BundleManifest,
    evidence: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The card as one JSON-ready dict (the JSON card is exactly this).

    ``evidence`` (``load_evidence``): feature-group gains and costs, the search's best trial
    and the staleness curve, shown when present.
    """
    return {
        **dict(evidence or {}),
        "model_family": manifest.model_family,
        "intended_use": INTENDED_USE,
        "limitations": list(LIMITATIONS),
        "lineage": {
            "data_snapshot_id": manifest.data_snapshot_id,
            "code_version": manifest.code_version,
            "created_at": manifest.created_at.isoformat(),
            "params": manifest.params,
            "featurizer": manifest.featurizer,
            "files": manifest.files,
        },
        "metrics": {
            "overall": report.overall,
            "pr_auc": report.pr_auc,
            "validation": manifest.metrics.get("validation"),
            "test_rows": report.test_rows,
        },
        "per_genre": [g.model_dump() for g in report.per_genre],
        "slices": [s.model_dump() for s in report.slices],
        "calibration": report.calibration.model_dump() if report.calibration else None,
        "robustness": [c.model_dump() for c in report.robustness.checks],
        "thresholds": dict(zip(manifest.genres, manifest.thresholds, strict=True)),
        "gate": {
            "passed": gate.passed,
            "checks": [c.model_dump() for c in gate.checks],
            "policy": gate.policy.model_dump(),
        },
        "plots": report.plots,
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _md_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _sections(
    report: EvaluationReport,
    gate: GateDecision,
    manifest: BundleManifest,
    evidence: Mapping[str, Any] | None = None,
) -> list[tuple[str, str, list[str], list[list[Any]]]]:
    """(title, text, table header, table rows) per section; shared by Markdown and HTML."""
    overall = report.overall
    calib = report.calibration
    return [
        ("Intended use", INTENDED_USE, [], []),
        (
            "Data and lineage",
            "",
            ["item", "value"],
            [
                ["data snapshot", manifest.data_snapshot_id],
                ["code version", manifest.code_version],
                ["created", manifest.created_at.isoformat()],
                ["training rows", manifest.params.get("train_rows")],
                ["test rows", report.test_rows],
                ["featurizer", json.dumps(manifest.featurizer, sort_keys=True)],
            ],
        ),
        (
            "Metrics (test split)",
            "",
            ["micro-F1", "macro-F1", "samples-F1", "PR-AUC micro", "PR-AUC macro"],
            [
                [
                    overall["micro_f1"],
                    overall["macro_f1"],
                    overall["samples_f1"],
                    report.pr_auc.get("micro"),
                    report.pr_auc.get("macro"),
                ]
            ],
        ),
        (
            "Per genre and thresholds",
            "",
            ["genre", "threshold", "precision", "recall", "F1", "PR-AUC", "support"],
            [
                [g.genre, g.threshold, g.precision, g.recall, g.f1, g.pr_auc, g.support]
                for g in report.per_genre
            ],
        ),
        (
            "Slices",
            "",
            ["slice", "support", "micro-F1", "macro-F1"],
            [[s.name, s.support, s.micro_f1, s.macro_f1] for s in report.slices],
        ),
        (
            "Calibration",
            f"Expected calibration error: {_fmt(calib.ece if calib else None)}",
            ["bin", "count", "mean score", "share positive"],
            [
                [f"{b.lower:.1f}-{b.upper:.1f}", b.count, b.mean_score, b.positive_rate]
                for b in (calib.bins if calib else [])
            ],
        ),
        (
            "Robustness",
            "Stability: mean genre-set similarity (Jaccard) before/after the edit, against the "
            f"same under the null edit ({report.robustness.null_edit or 'not measured'}); the "
            "gate bounds the excess change. Directional: share of cases that moved as expected.",
            ["check", "kind", "pass rate", "similarity", "null", "excess change", "cases", "what"],
            [
                [
                    c.name,
                    c.kind,
                    c.pass_rate,
                    c.similarity,
                    c.null_similarity,
                    c.excess_change,
                    c.cases,
                    c.description,
                ]
                for c in report.robustness.checks
            ],
        ),
        (
            "Robustness examples",
            "The worst cases of each check (titles the null edit also moves come last).",
            ["check", "title", "edit", "before", "after"],
            [
                [
                    c.name,
                    e.get("title") or e.get("text") or e.get("before"),
                    e.get("edit"),
                    e.get("genres_before", e.get("before")),
                    e.get("genres_after", e.get("after")),
                ]
                for c in report.robustness.checks
                for e in c.examples
            ],
        ),
        (
            f"Gate decision: {'PASSED' if gate.passed else 'FAILED'}",
            "",
            ["check", "result", "observed", "required", "reason"],
            [
                [c.name, "pass" if c.passed else "FAIL", c.observed, c.required, c.message]
                for c in gate.checks
            ],
        ),
        *_evidence_sections(evidence or {}),
        ("Limitations", "\n".join(f"- {item}" for item in LIMITATIONS), [], []),
    ]


def render_markdown(
    report: EvaluationReport,
    gate: GateDecision,
    manifest: BundleManifest,
    evidence: Mapping[str, Any] | None = None,
) -> str:
    """The card as Markdown (for ``dsl.Markdown`` and the registry's docs)."""
    parts = [f"# Model card: genre classifier ({manifest.model_family})"]
    for title, text, header, rows in _sections(report, gate, manifest, evidence):
        parts.append(f"## {title}")
        if text:
            parts.append(text)
        if header:
            parts.append(_md_table(header, rows))
    return "\n\n".join(parts) + "\n"


def _html_table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(
    report: EvaluationReport,
    gate: GateDecision,
    manifest: BundleManifest,
    evidence: Mapping[str, Any] | None = None,
) -> str:
    """The card as one self-contained HTML page (plots inlined as base64 PNGs)."""
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Model card: {html.escape(manifest.model_family)}</title>",
        "<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto}"
        "table{border-collapse:collapse;margin:.5rem 0}"
        "td,th{border:1px solid #ccc;padding:.2rem .5rem}"
        ".fail{color:#b00}</style></head><body>",
        f"<h1>Model card: genre classifier ({html.escape(manifest.model_family)})</h1>",
    ]
    for title, text, header, rows in _sections(report, gate, manifest, evidence):
        css = " class='fail'" if title.endswith("FAILED") else ""
        out.append(f"<h2{css}>{html.escape(title)}</h2>")
        if text:
            out.append("<p>" + html.escape(text).replace("\n", "<br>") + "</p>")
        if header:
            out.append(_html_table(header, rows))
    for name, path in report.plots.items():
        if Path(path).is_file():
            data = base64.b64encode(Path(path).read_bytes()).decode()
            label = html.escape(name)
            out.append(f"<h3>{label}</h3><img alt='{label}' src='data:image/png;base64,{data}'>")
    out.append("</body></html>")
    return "\n".join(out)


def write_model_card(
    report: EvaluationReport,
    gate: GateDecision,
    manifest: BundleManifest,
    out_dir: Path,
    evidence: Mapping[str, Any] | None = None,
) -> ModelCardPaths:
    """Write ``model_card.html``, ``model_card.json`` and ``model_card.md`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = ModelCardPaths(
        html=out_dir / "model_card.html",
        json_path=out_dir / "model_card.json",
        markdown=out_dir / "model_card.md",
    )
    paths.html.write_text(render_html(report, gate, manifest, evidence))
    paths.json_path.write_text(
        json.dumps(card_content(report, gate, manifest, evidence), indent=2, default=str)
    )
    paths.markdown.write_text(render_markdown(report, gate, manifest, evidence))
    return paths
