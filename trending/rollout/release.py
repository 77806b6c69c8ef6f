"""From evaluated candidates to a release decision: gate each, pick the champion, record the run.

The training pipeline's gate step is a thin call of ``judge_candidates`` and ``record_run``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trending.modelling.evaluation import EvaluationReport
from trending.modelling.gate import (
    ChampionChoice,
    GateDecision,
    GatePolicy,
    choose_champion,
    decide,
)
from trending.modelling.runs import RunLog, RunRecord

REPORT_FILE = "report.json"


def read_report(folder: Path) -> EvaluationReport | None:
    """The report in an evaluation folder, or None when the folder holds none (no production yet)."""
    path = Path(folder) / REPORT_FILE
    return EvaluationReport.read(path) if path.is_file() else None


def judge_candidates(
    candidates: Sequence[EvaluationReport],
    *,
    baseline: EvaluationReport,
    production: EvaluationReport | None,
    policy: GatePolicy,
) -> tuple[dict[str, GateDecision], ChampionChoice]:
    """Gate every candidate against the same baseline and production model; choose the champion."""
    decisions = {
        c.model_family: decide(c, baseline=baseline, production=production, policy=policy)
        for c in candidates
    }
    return decisions, choose_champion(candidates, decisions)


def record_run(
    run_log: RunLog,
    *,
    choice: ChampionChoice,
    decisions: dict[str, GateDecision],
    reports: Sequence[EvaluationReport],
    production: EvaluationReport | None,
    params: dict[str, Any],
    run_id: str | None = None,
) -> RunRecord:
    """Write the run record: every candidate's metrics, production's, and the verdict.

    Losers and baselines keep their metrics; production's, on the same rows, are under the key
    ``production``.
    """
    first = reports[0]
    record = RunRecord(
        **({"run_id": run_id} if run_id else {}),
        model_name=run_log.model_name,
        status="succeeded" if choice.champion else "gate_failed",
        data_snapshot_id=first.data_snapshot_id,
        code_version=first.code_version,
        params=params,
        metrics={
            **{r.model_family: dict(r.overall) for r in reports},
            **({"production": dict(production.overall)} if production else {}),
        },
        champion=choice.champion,
        notes="; ".join(d.summary().replace("\n", " ") for d in decisions.values()),
    )
    return run_log.write(record)


def finalize_bundle(bundle_dir: Path, report: EvaluationReport, decision: GateDecision) -> Path:
    """Put the model card into the bundle and the test metrics into its manifest, then re-seal it.

    Returns the card folder inside the bundle (model_card.html/.json/.md).
    """
    from trending.modelling.bundle import read_manifest, write_manifest
    from trending.modelling.card import write_model_card

    bundle_dir = Path(bundle_dir)
    manifest = read_manifest(bundle_dir)
    manifest = manifest.model_copy(
        update={
            "metrics": {
                **manifest.metrics,
                "test": dict(report.overall),
                "gate_passed": decision.passed,
            }
        }
    )
    card_dir = bundle_dir / "card"
    write_model_card(report, decision, manifest, card_dir)
    write_manifest(bundle_dir, manifest)
    return card_dir
