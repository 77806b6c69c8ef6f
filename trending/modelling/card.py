"""The model card of a registered version: HTML (with the plots inlined) + JSON + Markdown.

The card states intended use, data snapshot and lineage, metrics and slices, calibration,
robustness, thresholds, limitations and the gate decision, all read from the bundle manifest, the
``EvaluationReport`` and the ``GateDecision``. ``render_markdown`` gives the same content for
KFP's ``dsl.Markdown`` output.

It also carries the offline evidence the family's defaults rest on: each feature group's gain and
serving cost (the ablation), the hyper-parameter search's best trial (the run's own when it
searched, else the recorded search that set the defaults) and the staleness curve with the
ModelStale threshold and why. The benchmarks record it in benchmarks/results/;
``collect_evidence`` summarizes it into the package's evidence.json (``python -m
benchmarks.evidence``), which ``packaged_evidence`` reads for every card.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from trending.modelling.bundle import BundleManifest
from trending.modelling.evaluation import EvaluationReport
from trending.modelling.gate import GateDecision, GatePolicy

if TYPE_CHECKING:
    from trending.modelling.search import SearchResult

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


# The offline evidence the defaults rest on: measured by the benchmarks into benchmarks/results/,
# summarized by ``collect_evidence`` into evidence.json beside this module (package data, so it
# ships in the wheel and the component image), and put on every card by ``packaged_evidence``.
MODELS_RESULTS = "benchmarks/results/models.json"
STALENESS_RESULTS = "benchmarks/results/staleness.json"
EVIDENCE_PRODUCER = "python -m benchmarks.evidence"
EVIDENCE_FAMILIES = ("xgboost", "bert", "linear", "prior")
ABLATION_SCORER = "one-vs-rest logistic scorers (the XGBoost family's stacked scorer)"
STALE_THRESHOLD_REASON = (
    "so content decay does not set it: new titles and names arrive daily, genre labels are "
    "edited, and a scheduled run proves that retraining still works (docs/monitoring.md, "
    "'Staleness')"
)


def load_evidence(
    results_dir: Path, family: str, *, model_stale_days: int | None = None
) -> dict[str, Any]:
    """What the benchmarks measured for ``family``: feature groups, search, staleness.

    Reads ``models.json`` (keys ``ablation`` and ``search``) and ``staleness.json`` in
    ``results_dir`` (benchmarks/results); a missing file or key leaves that part out.

    Args:
        results_dir: The benchmarks' results folder.
        family: The model family the card is for.
        model_stale_days: The ModelStale alert's threshold (days); with it, the staleness part
            says why the threshold is what it is, against the recorded curves.
    """
    from trending.modelling.staleness import days_until_drop

    def read(name: str) -> dict[str, Any]:
        path = Path(results_dir) / name
        return json.loads(path.read_text()) if path.is_file() else {}

    models, staleness = read("models.json"), read("staleness.json")
    evidence: dict[str, Any] = {}
    if ablation := models.get("ablation"):
        evidence["feature_groups"] = {
            "metric": ablation.get("metric"),
            "data": ablation.get("data"),
            "scorer": ABLATION_SCORER,
            "reference": f"{MODELS_RESULTS} (key 'ablation')",
            "groups": ablation.get("groups", {}),
        }
    if search := models.get("search", {}).get(family):
        evidence["search"] = {
            "source": "recorded",
            "reference": f"{MODELS_RESULTS} (key 'search')",
            "best_params": search.get("best_params"),
            "best_micro_f1": search.get("best_micro_f1"),
            "trials": len(search.get("trials", [])),
            "data": search.get("data"),
            "rows": search.get("rows"),
            "seed": search.get("seed"),
            "date": search.get("date"),
        }
    elif models:
        evidence["search"] = {"source": "none", "reference": f"{MODELS_RESULTS} (key 'search')"}
    curves = staleness.get("families", {})
    if curves:
        curve = curves.get(family, {})
        stale: dict[str, Any] = {
            "reference": STALENESS_RESULTS,
            "train_until": staleness.get("train_until"),
            "measured_families": sorted(curves),
            "micro_f1_drop_per_year": curve.get("micro_f1_drop_per_year"),
            "points": [
                {
                    k: p.get(k)
                    for k in ("window", "years_after_training", "micro_f1", "micro_f1_drop")
                }
                for p in curve.get("points", [])
            ],
        }
        if model_stale_days is not None:
            tolerance = GatePolicy().max_regression
            allowed = {
                name: days_until_drop(c.get("micro_f1_drop_per_year"), tolerance)
                for name, c in curves.items()
            }
            steepest = min(allowed, key=lambda name: allowed[name])
            stale["model_stale"] = {
                "threshold_days": model_stale_days,
                "gate_tolerance": tolerance,
                "days_until_tolerance": (
                    round(allowed[steepest]) if allowed[steepest] != float("inf") else None
                ),
                "steepest_family": steepest,
                "why": _stale_threshold_why(
                    model_stale_days, tolerance, allowed[steepest], steepest
                ),
            }
        evidence["staleness"] = stale
    return evidence


def _stale_threshold_why(days: int, tolerance: float, allowed: float, family: str) -> str:
    if allowed == float("inf"):
        return (
            f"ModelStale fires after {days} days; no recorded curve shows any decay, "
            f"{STALE_THRESHOLD_REASON}."
        )
    if days > allowed:
        return (
            f"ModelStale waits {days} days, longer than the {allowed:.0f} days after which the "
            f"recorded {family} curve loses the gate's tolerance ({tolerance} micro-F1): lower "
            "the threshold (docs/monitoring.md, 'Staleness')."
        )
    return (
        f"ModelStale fires after {days} days, long before the recorded curves lose the gate's "
        f"tolerance ({tolerance} micro-F1; {allowed:.0f} days at the steepest, {family}), "
        f"{STALE_THRESHOLD_REASON}."
    )


def collect_evidence(
    results_dir: Path,
    *,
    model_stale_days: int | None = None,
    families: tuple[str, ...] = EVIDENCE_FAMILIES,
) -> dict[str, Any]:
    """The evidence of every family, as the package's evidence.json holds it (``load_evidence``)."""
    return {
        "produced_by": EVIDENCE_PRODUCER,
        "sources": [MODELS_RESULTS, STALENESS_RESULTS],
        "families": {
            family: load_evidence(results_dir, family, model_stale_days=model_stale_days)
            for family in families
        },
    }


def packaged_evidence_path() -> Path:
    """Where the package keeps its evidence.json (written by ``python -m benchmarks.evidence``)."""
    return Path(__file__).with_name("evidence.json")


def packaged_evidence(family: str, path: Path | None = None) -> dict[str, Any]:
    """The shipped evidence for ``family`` (``{}`` when the file or the family has none).

    Args:
        family: The model family.
        path: Another evidence file of the same shape (default: the package's).
    """
    path = Path(path) if path is not None else packaged_evidence_path()
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text()).get("families", {}).get(family, {}))


def with_run_search(evidence: Mapping[str, Any], search: SearchResult) -> dict[str, Any]:
    """``evidence`` with its search replaced by the run's own (the card then says so)."""
    return {
        **evidence,
        "search": {
            "source": "run",
            "best_params": search.best_params,
            "best_micro_f1": search.best_micro_f1,
            "trials": len(search.trials),
            "data": "this run's training split",
            "rows": search.rows,
            "seed": search.seed,
        },
    }


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=0.01)
    return a == b


def _search_section(
    search: Mapping[str, Any], family: str, params: Mapping[str, Any]
) -> tuple[str, str, list[str], list[list[Any]]]:
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
            f"reached micro-F1 {_fmt(search.get('best_micro_f1'))} on the held-out part. {model}"
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
            f"{search.get('reference')}): micro-F1 {_fmt(search.get('best_micro_f1'))} on the "
            f"held-out rows. {model}"
        )
    rows = [[k, v, params.get(k)] for k, v in best.items()]
    return title, text, ["parameter", "best trial", "this model"], rows


def _evidence_sections(
    evidence: Mapping[str, Any], family: str, params: Mapping[str, Any]
) -> list[tuple[str, str, list[str], list[list[Any]]]]:
    sections: list[tuple[str, str, list[str], list[list[Any]]]] = []
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

    ``evidence`` (``packaged_evidence`` / ``load_evidence``, ``with_run_search``): feature-group
    gains and costs, the search's best trial and the staleness curve, shown when present.
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
        *_evidence_sections(evidence or {}, manifest.model_family, manifest.params),
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
