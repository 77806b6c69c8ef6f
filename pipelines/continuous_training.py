"""The continuous-training pipeline: why it runs and on which data window, then the training graph."""

from types import SimpleNamespace
from typing import Any

from kfp import dsl

from components.retrain_events import finish_retrain, start_retrain
from pipelines.cluster import PipelineConfig
from pipelines.parameters import (
    ENVIRONMENT,
    RETRAINING,
    SEED,
    TRAINING,
    parameters,
    passed_on,
    with_parameters,
)
from pipelines.training import TRAINING_PARAMETERS, build_training_pipeline, with_s3

# Retraining must not make things worse: the candidate must match production on the same rows.
RETRAIN_GATE_POLICY = '{"max_regression": 0.0}'
# The continuous-training pipeline's run parameters (declared once in pipelines/parameters.py).
CONTINUOUS_TRAINING_PARAMETERS = parameters(
    ENVIRONMENT, RETRAINING, TRAINING, SEED, defaults={"gate_policy_json": RETRAIN_GATE_POLICY}
)


def build_continuous_training_pipeline(config: PipelineConfig) -> Any:
    """The continuous-training pipeline for one compile-time configuration."""
    training = build_training_pipeline(config)

    @dsl.pipeline(
        name="genre-continuous-training",
        description="Retrain on a data window, compare with production on the same rows, "
        "stage only a better model.",
    )
    @with_parameters(CONTINUOUS_TRAINING_PARAMETERS, returns=str)
    def continuous_training_pipeline(arguments: dict[str, Any]) -> str:
        """Log the request, train on the window, log the outcome. Returns the outcome.

        ``alert_group`` names the Alertmanager group that asked for the run (the retrain
        trigger sets it, and names the run after it); it is kept with the run's parameters.
        """
        args = SimpleNamespace(**arguments)
        started = with_s3(
            start_retrain(
                registry_uri=args.registry_uri,
                model_name=args.model_name,
                reason=args.reason,
                window=args.window,
                window_days=args.window_days,
                drift_since=args.drift_since,
            ),
            config,
        ).set_caching_options(False)
        # Every parameter both pipelines have goes through as is (reason included); the
        # titles are the window the start step chose.
        trained = training(
            **passed_on(arguments, TRAINING_PARAMETERS),
            source="window",
            source_params_json=started.output,
        )
        finished = with_s3(
            finish_retrain(
                decision=trained.outputs["Output"],
                registry_uri=args.registry_uri,
                model_name=args.model_name,
                reason=args.reason,
            ),
            config,
        ).set_caching_options(False)
        return finished.output

    return continuous_training_pipeline


# The local configuration (kfp.local runs, `trending pipeline run`).
continuous_training_pipeline = build_continuous_training_pipeline(PipelineConfig())
