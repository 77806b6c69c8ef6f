"""What the card says as data: intended use, limitations, and the JSON card (``card_content``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
