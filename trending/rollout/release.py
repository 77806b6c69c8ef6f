"""From evaluated candidates to a release decision: gate each, pick the champion, record the run.

The training pipeline's gate step is a thin call of ``judge_candidates`` and ``record_run``; its
search step's decision joins the run record through ``record_search``, and ``finalize_bundle``
puts the model card (with the offline evidence) into the champion's bundle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trending.modelling.evaluation import EvaluationReport
from trending.modelling.gate import (
    ChampionChoice,
    GateDecision,
    GateFailedError,
    GatePolicy,
    choose_champion,
    decide,
)
from trending.modelling.runs import RunLog, RunRecord

if TYPE_CHECKING:
    from trending.modelling.search import SearchStep

REPORT_FILE = "report.json"
# Where ``finalize_bundle`` puts the model card, as listed in the bundle's manifest.
MODEL_CARD_FILE = "card/model_card.json"


def has_model_card(bundle_dir: Path) -> bool:
    """Whether the bundle's manifest lists its model card (``finalize_bundle`` wrote and sealed it)."""
    from trending.modelling.bundle import read_manifest

    return MODEL_CARD_FILE in read_manifest(Path(bundle_dir)).files


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


def run_summary(
    verdict: Mapping[str, Any],
    *,
    metrics: Mapping[str, Mapping[str, float]] | None = None,
    registered_version: int | None = None,
) -> list[str]:
    """What a training run decided, as lines for a person: champion, every family, registration.

    Args:
        verdict: The gate step's decision JSON (``choice`` and ``decisions``).
        metrics: The run record's metrics per family (baselines and production included).
        registered_version: The version the register step created, None when nothing was.

    Returns:
        The champion line ("no champion: ..." when none passed), one line per candidate with its
        scores and failed checks (each failure's message below it), the baselines' scores and
        what was registered.
    """
    choice = ChampionChoice.model_validate(verdict["choice"])
    decisions = {f: GateDecision.model_validate(d) for f, d in verdict["decisions"].items()}
    lines = [
        f"champion: {choice.champion}"
        if choice.champion
        else "no champion: no candidate passed the gate (nothing to register)"
    ]
    for c in choice.candidates:
        ece = f", ECE {c.ece:.3f}" if c.ece is not None else ""
        verdict_text = (
            "gate passed" if c.gate_passed else f"gate FAILED: {', '.join(c.gate_failures)}"
        )
        lines.append(
            f"  {c.model_family}: micro-F1 {c.micro_f1:.3f}, macro-F1 {c.macro_f1:.3f}{ece}; "
            f"{verdict_text}"
        )
        decision = decisions.get(c.model_family)
        lines += [f"      {f.name}: {f.message}" for f in (decision.failures if decision else [])]
    for family, values in (metrics or {}).items():
        if family not in decisions and "micro_f1" in values:
            lines.append(
                f"  {family} (not a candidate): micro-F1 {values['micro_f1']:.3f}, "
                f"macro-F1 {values.get('macro_f1', float('nan')):.3f}"
            )
    lines.append(
        f"registered: version {registered_version} ({choice.champion})"
        if registered_version is not None
        else "registered: nothing"
    )
    return lines


def require_champion(verdict: Mapping[str, Any]) -> str:
    """The champion's family; ``GateFailedError`` with every candidate's reasons when none passed."""
    choice = ChampionChoice.model_validate(verdict["choice"])
    if choice.champion:
        return choice.champion
    decisions = [GateDecision.model_validate(d) for d in verdict["decisions"].values()]
    if not decisions:
        raise ValueError("the gate decision names no candidate: was the gate step run?")
    raise GateFailedError(decisions[0], also=decisions[1:])


def record_search(run_log: RunLog, run_id: str, step: SearchStep) -> RunRecord:
    """Add the search step's decision to run ``run_id``'s record, under its family.

    The record keeps the parameters training got and, when the run searched, every trial
    (``RunRecord.search[family]``; ``search`` is None for a run that kept the defaults).
    """
    record = run_log.get(run_id)
    search = {**record.search, step.family: step.model_dump(mode="json")}
    return run_log.write(record.model_copy(update={"search": search}))


def finalize_bundle(
    bundle_dir: Path,
    report: EvaluationReport,
    decision: GateDecision,
    *,
    evidence: Mapping[str, Any] | None = None,
    search: SearchStep | None = None,
) -> Path:
    """Put the model card into the bundle and the test metrics into its manifest, then re-seal it.

    Args:
        bundle_dir: The champion's bundle (changed in place).
        report: The champion's evaluation.
        decision: The champion's gate decision.
        evidence: The offline evidence for the card (default: what the package ships for the
            bundle's family, ``trending.modelling.card.packaged_evidence``).
        search: The run's search step; when it searched this family, the card shows the run's
            own best trial instead of the recorded search that set the defaults.

    Returns:
        The card folder inside the bundle (model_card.html/.json/.md).
    """
    from trending.modelling.bundle import read_manifest, write_manifest
    from trending.modelling.card import packaged_evidence, with_run_search, write_model_card

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
    if evidence is None:
        evidence = packaged_evidence(manifest.model_family)
    if search is not None and search.search is not None and search.family == manifest.model_family:
        evidence = with_run_search(evidence, search.search)
    card_dir = bundle_dir / "card"
    write_model_card(report, decision, manifest, card_dir, evidence=evidence)
    write_manifest(bundle_dir, manifest)
    return card_dir
