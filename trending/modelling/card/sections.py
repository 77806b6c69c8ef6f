"""The card's sections (title, text, table header, table rows), shared by Markdown and HTML."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from trending.modelling.bundle import BundleManifest
from trending.modelling.card.content import INTENDED_USE, LIMITATIONS
from trending.modelling.evaluation import EvaluationReport
from trending.modelling.gate import GateDecision

# (title, text, table header, table rows); no header: the section has no table.
Section = tuple[str, str, list[str], list[list[Any]]]


def format_value(value: Any) -> str:
    """A value as the card prints it: floats to 3 decimals, a missing value as a dash."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=0.01)
    return a == b


def _search_section(search: Mapping[str, Any], family: str, params: Mapping[str, Any]) -> Section:
    best = dict(search.get("best_params") or {})
    uses_best = all(k in params and _same_value(params[k], v) for k, v in best.items())
    model = (
        "This model was trained with them."
        if uses_best
        else "This model's parameters differ from them (set for this run: see Data and lineage)."
    )
    source = search.get("source")
    if source == "run":
        title = "Hyper-parameter search (this run)"
        text = (
            f"This run searched: the best of {search.get('trials')} seeded trials (seed "
            f"{search.get('seed')}) on its training split ({search.get('rows')} labelled rows) "
            f"reached micro-F1 {format_value(search.get('best_micro_f1'))} on the held-out part. "
            f"{model}"
        )
    elif source == "none" or not best:
        title = "Hyper-parameter search"
        return (
            title,
            f"This run did no search, and no recorded search set {family}'s default parameters "
            f"({search.get('reference')}).",
            [],
            [],
        )
    else:
        title = "Hyper-parameter search (recorded; set the defaults)"
        text = (
            f"This run did no search. The family's defaults are the best of "
            f"{search.get('trials')} seeded trials recorded on {search.get('data')} "
            f"({search.get('rows')} rows, seed {search.get('seed')}, {search.get('date')}; "
            f"{search.get('reference')}): micro-F1 "
            f"{format_value(search.get('best_micro_f1'))} on the held-out rows. {model}"
        )
    rows = [[k, v, params.get(k)] for k, v in best.items()]
    return title, text, ["parameter", "best trial", "this model"], rows


def _evidence_sections(
    evidence: Mapping[str, Any], family: str, params: Mapping[str, Any]
) -> list[Section]:
    sections: list[Section] = []
    if groups := evidence.get("feature_groups"):
        sections.append(
            (
                "Feature groups: gain and serving cost",
                f"Gain: drop of {groups.get('metric')} when the group is left out "
                f"({groups.get('data')}; {groups.get('scorer') or 'the ablation'}); a gain not "
                "above its noise does not show the group helps. Cost: what the group adds to "
                f"each title's features at serving time. Source: {groups.get('reference')}.",
                [
                    "group",
                    "gain",
                    "noise",
                    "helps",
                    "columns",
                    "non-zeros/title",
                    "µs/title",
                    "note",
                ],
                [
                    [
                        name,
                        g.get("gain"),
                        g.get("noise"),
                        "yes" if g.get("beneficial") else "no",
                        g.get("columns"),
                        g.get("nonzeros_per_title"),
                        g.get("serving_us_per_title"),
                        g.get("reason")
                        or ("not in the data" if g.get("present") is False else None),
                    ]
                    for name, g in groups.get("groups", {}).items()
                ],
            )
        )
    if search := evidence.get("search"):
        sections.append(_search_section(search, family, params))
    if stale := evidence.get("staleness"):
        drop = stale.get("micro_f1_drop_per_year")
        text = (
            f"Micro-F1 drop per year of release-year age: {drop:.5f} (trained on titles up "
            f"to {stale.get('train_until')}); curve: {stale.get('reference')}."
            if drop is not None
            else f"Not measured for {family}; the recorded curves ({stale.get('reference')}) "
            f"are {', '.join(stale.get('measured_families', []))}."
        )
        if threshold := stale.get("model_stale"):
            text += f"\nModelStale threshold: {threshold.get('threshold_days')} days. "
            text += str(threshold.get("why"))
        sections.append(
            (
                "Staleness",
                text,
                ["window", "years after training", "micro-F1", "drop"]
                if stale.get("points")
                else [],
                [
                    [
                        p.get("window"),
                        p.get("years_after_training"),
                        p.get("micro_f1"),
                        p.get("micro_f1_drop"),
                    ]
                    for p in stale.get("points", [])
                ],
            )
        )
    return sections


def card_sections(
    report: EvaluationReport,
    gate: GateDecision,
    manifest: BundleManifest,
    evidence: Mapping[str, Any] | None = None,
) -> list[Section]:
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
            f"Expected calibration error: {format_value(calib.ece if calib else None)}",
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
        *_evidence_sections(evidence or {}, manifest.model_family, manifest.params),
        ("Limitations", "\n".join(f"- {item}" for item in LIMITATIONS), [], []),
    ]
