"""The card's offline evidence: benchmarks/results summarized into the package's evidence.json.

Each feature group's gain and serving cost (the ablation), the hyper-parameter search's best trial
(the run's own when it searched, else the recorded search that set the defaults) and the staleness
curve with the ModelStale threshold and why. The benchmarks record it in benchmarks/results/;
``collect_evidence`` summarizes it into the package's evidence.json (``python -m
benchmarks.evidence``), which ``packaged_evidence`` reads for every card.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trending.modelling.gate import GatePolicy

if TYPE_CHECKING:
    from trending.modelling.search import SearchResult

# The offline evidence the defaults rest on: measured by the benchmarks into benchmarks/results/,
# summarized by ``collect_evidence`` into trending/modelling/evidence.json (package data, so it
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
    # trending/modelling/evidence.json: package data of trending.modelling (pyproject.toml),
    # one folder above this subpackage.
    return Path(__file__).parent.parent / "evidence.json"


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
