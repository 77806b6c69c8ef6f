"""The continuous-training pipeline: why it runs and on which data window, then the training graph."""

from typing import Any

from kfp import dsl

from components.retrain_events import finish_retrain, start_retrain
from pipelines.cluster import PipelineConfig
from pipelines.training import build_training_pipeline, with_s3

# Retraining must not make things worse: the candidate must match production on the same rows.
RETRAIN_GATE_POLICY = '{"max_regression": 0.0}'


def build_continuous_training_pipeline(config: PipelineConfig) -> Any:
    """The continuous-training pipeline for one compile-time configuration."""
    training = build_training_pipeline(config)

    @dsl.pipeline(
        name="genre-continuous-training",
        description="Retrain on a data window, compare with production on the same rows, "
        "stage only a better model.",
    )
    def continuous_training_pipeline(
        data_uri: str,
        feature_repo: str,
        feast_dir: str,
        registry_uri: str,
        feature_store_yaml: str = "feature_store.yaml",
        model_name: str = "genre-classifier",
        reason: str = "schedule",
        window: str = "growing",
        window_days: int = 90,
        drift_since: str = "",
        alert_group: str = "",
        xgboost_params_json: str = "{}",
        bert_params_json: str = "{}",
        gate_policy_json: str = RETRAIN_GATE_POLICY,
        robustness_cases: int = 200,
        drift_backend: str = "scipy",
        seed: int = 7,
    ) -> str:
        """Log the request, train on the window, log the outcome. Returns the outcome.

        ``alert_group`` names the Alertmanager group that asked for the run (the retrain
        trigger sets it, and names the run after it); it is kept with the run's parameters.
        """
        started = with_s3(
            start_retrain(
                registry_uri=registry_uri, model_name=model_name, reason=reason, window=window,
                window_days=window_days, drift_since=drift_since,
            ),
            config,
        ).set_caching_options(False)  # fmt: skip
        trained = training(
            data_uri=data_uri,
            feature_repo=feature_repo,
            feast_dir=feast_dir,
            registry_uri=registry_uri,
            feature_store_yaml=feature_store_yaml,
            model_name=model_name,
            source="window",
            source_params_json=started.output,
            xgboost_params_json=xgboost_params_json,
            bert_params_json=bert_params_json,
            gate_policy_json=gate_policy_json,
            robustness_cases=robustness_cases,
            drift_backend=drift_backend,
            reason=reason,
            seed=seed,
        )
        finished = with_s3(
            finish_retrain(
                decision=trained.outputs["Output"],
                registry_uri=registry_uri,
                model_name=model_name,
                reason=reason,
            ),
            config,
        ).set_caching_options(False)
        return finished.output

    return continuous_training_pipeline


# The local configuration (kfp.local runs, `trending pipeline run`).
continuous_training_pipeline = build_continuous_training_pipeline(PipelineConfig())
