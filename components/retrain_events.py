"""Components: open and close a continuous-training run in the registry's event log."""

from kfp import dsl
from kfp.dsl import Artifact, Input

from components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def start_retrain(
    registry_uri: str,
    model_name: str,
    reason: str,
    window: str = "growing",
    window_days: int = 90,
    drift_since: str = "",
    actor: str = "kfp:continuous-training",
) -> str:
    """Log ``retrain_started`` and return the data-window parameters for the ingest step.

    Args:
        registry_uri: Registry root; S3 credentials come from the environment.
        model_name: Registered model name.
        reason: Why the run happens: drift | schedule | data_volume | performance.
        window: Training data window: fixed | growing | drift_selected.
        window_days: Length of a fixed window.
        drift_since: Drift onset (ISO time) for a drift_selected window.
        actor: Who runs it, for the event log.

    Returns:
        ``source_params_json`` for the ``window`` source.
    """
    import json

    from trending.rollout.retrain import start_retraining

    return json.dumps(
        start_retraining(
            registry_uri,
            model_name,
            reason=reason,
            window=window,
            days=window_days,
            since=drift_since or None,
            actor=actor,
        )
    )


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def finish_retrain(
    decision: Input[Artifact],
    registry_uri: str,
    model_name: str,
    reason: str,
    actor: str = "kfp:continuous-training",
) -> str:
    """Log ``retrain_finished`` with the candidate-vs-production comparison of the run.

    Args:
        decision: The gate's decision JSON (holds the run id).
        registry_uri: Registry root.
        model_name: Registered model name.
        reason: Why the run happened.
        actor: Who runs it, for the event log.

    Returns:
        The outcome: "deployed-as-canary", "promoted" or "kept-production".
    """
    import json
    from pathlib import Path

    from trending.rollout.retrain import finish_retraining

    run_id = json.loads(Path(decision.path).read_text())["run_id"]
    return finish_retraining(registry_uri, model_name, reason=reason, run_id=run_id, actor=actor)
