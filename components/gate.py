"""Component: gate every candidate, choose the champion, record the run."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Model, Output

from components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def gate(
    xgboost_bundle: Input[Model],
    xgboost_report: Input[Artifact],
    bert_bundle: Input[Model],
    bert_report: Input[Artifact],
    linear_report: Input[Artifact],
    prior_report: Input[Artifact],
    production_report: Input[Artifact],
    champion: Output[Model],
    champion_report: Output[Artifact],
    decision: Output[Artifact],
    registry_uri: str,
    model_name: str,
    policy_json: str = "{}",
    reason: str = "training pipeline",
    actor: str = "kfp:training-pipeline",
) -> str:
    """Apply the gate to both families, pick the champion, log the decision and the run.

    Args:
        xgboost_bundle: XGBoost candidate.
        xgboost_report: Its evaluation folder.
        bert_bundle: BERT candidate.
        bert_report: Its evaluation folder.
        linear_report: Linear baseline evaluation (the bar to beat).
        prior_report: Prior baseline evaluation (reported only).
        production_report: Production model on the same rows (empty folder: none yet).
        champion: Copy of the winning bundle (empty when nothing passed).
        champion_report: The winner's evaluation folder.
        decision: JSON with the run id, every decision, the choice and the rule.
        registry_uri: Registry root, for the event log and the run log.
        model_name: Registered model name.
        policy_json: GatePolicy fields as JSON (defaults otherwise).
        reason: Why this run exists, for the event log.
        actor: Who runs it, for the event log.

    Returns:
        The champion's family, or "" when no candidate passed (a single output, so that
        ``dsl.If`` works on kfp.local too).
    """
    import json
    import shutil
    from pathlib import Path

    from trending.modelling.gate import GatePolicy
    from trending.modelling.runs import RunLog
    from trending.registry import Registry
    from trending.rollout.release import judge_candidates, read_report, record_run

    candidates = [read_report(Path(xgboost_report.path)), read_report(Path(bert_report.path))]
    baselines = [read_report(Path(linear_report.path)), read_report(Path(prior_report.path))]
    production = read_report(Path(production_report.path))
    decisions, choice = judge_candidates(
        candidates,
        baseline=baselines[0],
        production=production,
        policy=GatePolicy.model_validate_json(policy_json),
    )
    run = record_run(
        RunLog.from_uri(registry_uri, model_name),
        choice=choice,
        decisions=decisions,
        reports=[*candidates, *baselines],
        production=production,
        params={"policy": json.loads(policy_json), "reason": reason},
    )
    verdict = {
        "run_id": run.run_id,
        "choice": choice.model_dump(),
        "decisions": {f: d.model_dump() for f, d in decisions.items()},
    }
    Path(decision.path).write_text(json.dumps(verdict, indent=2, default=str))
    Registry.from_uri(registry_uri, model_name).log_event(
        "gate_decision",
        actor=actor,
        reason=reason,
        details={
            "run_id": run.run_id,
            "champion": choice.champion,
            "candidates": verdict["choice"]["candidates"],
        },
    )
    bundles = {"xgboost": xgboost_bundle.path, "bert": bert_bundle.path}
    reports = {"xgboost": xgboost_report.path, "bert": bert_report.path}
    if choice.champion:
        shutil.copytree(bundles[choice.champion], champion.path)
        shutil.copytree(reports[choice.champion], champion_report.path)
    return choice.champion or ""
