"""The training pipeline: data -> features -> search -> families + baselines -> gate -> card -> register."""

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from kfp import dsl, kubernetes
from kfp.dsl import Artifact

from components.evaluate import evaluate
from components.evaluate_production import evaluate_production
from components.fit_drift_detector import fit_drift_detector
from components.gate import gate
from components.ingest import ingest
from components.load_features import load_features
from components.materialize_features import materialize_features
from components.model_card import model_card
from components.record_search import record_search
from components.register import register
from components.search_params import search_params
from components.snapshot import snapshot
from components.split_dataset import split_dataset
from components.train_model import train_model
from components.validate import validate
from pipelines.cluster import (
    GPU_NODE_LABEL,
    GPU_RESOURCE,
    REDIS_SECRET,
    REDIS_SECRET_KEYS,
    S3_SECRET,
    S3_SECRET_KEYS,
    SIGNING_SECRET,
    SIGNING_SECRET_KEYS,
    PipelineConfig,
)
from pipelines.parameters import (
    DATA,
    ENVIRONMENT,
    REASON,
    SEED,
    TRAINING,
    parameters,
    with_parameters,
)


def with_s3(task: dsl.PipelineTask, config: PipelineConfig | None = None) -> dsl.PipelineTask:
    """Give a task the object-store credentials from the Secret (never as parameters)."""
    kubernetes.use_secret_as_env(task, secret_name=S3_SECRET, secret_key_to_env=S3_SECRET_KEYS)
    for name, value in (config.step_env if config else {}).items():
        task.set_env_variable(name, value)
    return task


def with_feast(task: dsl.PipelineTask, config: PipelineConfig) -> dsl.PipelineTask:
    """An object-store step that also opens the feature store: add the Redis password."""
    if config.feast_secret:
        kubernetes.use_secret_as_env(
            task, secret_name=REDIS_SECRET, secret_key_to_env=REDIS_SECRET_KEYS
        )
    return task


def io_step(
    task: dsl.PipelineTask, config: PipelineConfig, *, cache: bool = True
) -> dsl.PipelineTask:
    """An object-store step: credentials, retries with backoff, small resources."""
    with_s3(task, config)
    task.set_retry(num_retries=3, backoff_duration="15s", backoff_factor=2.0)
    task.set_cpu_request("250m").set_memory_request("512Mi").set_memory_limit("2Gi")
    task.set_caching_options(cache)
    return task


def on_accelerator(task: dsl.PipelineTask, config: PipelineConfig) -> dsl.PipelineTask:
    """The BERT step: one GPU on the GPU pool, or the CPU pool when the accelerator is none.

    kfp.local ignores both and runs on this machine's CPU. The GPU step's image is swapped for
    the CUDA build at compile time (pipelines.run.compile_pipeline).
    """
    if not config.gpu:
        return cpu_step(task, cpu="2", memory="4Gi")
    task.set_accelerator_type(GPU_RESOURCE).set_accelerator_limit(1)
    task.set_cpu_request("2").set_memory_request("8Gi").set_memory_limit("16Gi")
    kubernetes.add_node_selector(task, label_key=GPU_NODE_LABEL[0], label_value=GPU_NODE_LABEL[1])
    kubernetes.add_toleration(task, key=GPU_RESOURCE, operator="Exists", effect="NoSchedule")
    return task


def cpu_step(task: dsl.PipelineTask, cpu: str = "1", memory: str = "2Gi") -> dsl.PipelineTask:
    """A compute step on the CPU pool."""
    task.set_cpu_request(cpu).set_memory_request(memory).set_memory_limit(memory)
    return task


# The training pipeline's run parameters (declared once in pipelines/parameters.py).
TRAINING_PARAMETERS = parameters(ENVIRONMENT, DATA, TRAINING, REASON, SEED)
# The family the search step tunes (the one whose defaults a recorded search set).
SEARCHED_FAMILY = "xgboost"


def build_training_pipeline(config: PipelineConfig) -> Any:
    """The training pipeline for one compile-time configuration (accelerator, step environment)."""

    @dsl.pipeline(
        name="genre-training", description="Train, gate and register the genre classifier."
    )
    @with_parameters(TRAINING_PARAMETERS, returns=Artifact)
    def training_pipeline(arguments: dict[str, Any]) -> Artifact:
        """Wire the steps; the gate decides whether anything is registered.

        Returns the gate's decision (run id, every candidate's verdict, the champion).
        """
        return training_steps(config, arguments)

    return training_pipeline


def training_steps(config: PipelineConfig, arguments: Mapping[str, Any]) -> Any:
    """The steps of the training pipeline, wired inside the caller's pipeline function.

    Args:
        config: The compile-time configuration.
        arguments: One value (or pipeline channel) per parameter in ``TRAINING_PARAMETERS``.

    Returns:
        The gate's decision artifact.
    """
    args = SimpleNamespace(**arguments)
    data_uri, registry_uri, model_name, seed = (
        args.data_uri,
        args.registry_uri,
        args.model_name,
        args.seed,
    )
    raw = io_step(
        ingest(data_uri=data_uri, source=args.source, params_json=args.source_params_json),
        config,
        cache=False,
    )
    checked = validate(raw=raw.outputs["raw"], max_reject_rate=args.max_reject_rate)
    snap = io_step(
        snapshot(
            accepted=checked.outputs["accepted"],
            rejected=checked.outputs["rejected"],
            data_uri=data_uri,
            source=args.source,
            params_json=args.source_params_json,
        ),
        config,
    )
    feast = {
        "data_uri": data_uri,
        "snapshot_id": snap.output,
        "feature_repo": args.feature_repo,
        "feature_store_yaml": args.feature_store_yaml,
        "feast_dir": args.feast_dir,
    }
    published = with_feast(io_step(materialize_features(**feast), config, cache=False), config)
    features = with_feast(io_step(load_features(**feast), config), config).after(published)
    split = split_dataset(features=features.outputs["features"], seed=seed)
    train_rows, test_rows = split.outputs["train"], split.outputs["test"]

    def trained(family: str, params_json: Any) -> dsl.PipelineTask:
        return train_model(
            train=train_rows,
            family=family,
            snapshot_id=snap.output,
            params_json=params_json,
            seed=seed,
        ).set_display_name(f"train-{family}")

    def evaluated(task: dsl.PipelineTask, family: str, behaviour: bool) -> dsl.PipelineTask:
        return cpu_step(
            evaluate(
                bundle=task.outputs["bundle"],
                test=test_rows,
                robustness=behaviour,
                robustness_cases=args.robustness_cases,
            )
        ).set_display_name(f"evaluate-{family}")

    # search_trials=0: the step hands xgboost_params_json through (the defaults are the best of
    # the recorded search); above 0 it searches on the training split, never the test rows.
    searched = cpu_step(
        search_params(
            train=train_rows,
            family=SEARCHED_FAMILY,
            n_trials=args.search_trials,
            fixed_params_json=args.xgboost_params_json,
            seed=seed,
        ),
        cpu="2",
        memory="4Gi",
    ).set_display_name(f"search-{SEARCHED_FAMILY}")
    xgb = cpu_step(trained("xgboost", searched.outputs["Output"]), cpu="2", memory="4Gi")
    bert = on_accelerator(trained("bert", args.bert_params_json), config)
    linear = cpu_step(trained("linear", "{}"))
    prior = cpu_step(trained("prior", "{}"), cpu="250m", memory="1Gi")
    production = io_step(
        evaluate_production(test=test_rows, registry_uri=registry_uri, model_name=model_name),
        config,
        cache=False,
    )
    verdict = with_s3(
        gate(
            xgboost_bundle=xgb.outputs["bundle"],
            xgboost_report=evaluated(xgb, "xgboost", True).outputs["report"],
            bert_bundle=bert.outputs["bundle"],
            bert_report=evaluated(bert, "bert", True).outputs["report"],
            linear_report=evaluated(linear, "linear", False).outputs["report"],
            prior_report=evaluated(prior, "prior", False).outputs["report"],
            production_report=production.outputs["report"],
            registry_uri=registry_uri,
            model_name=model_name,
            policy_json=args.gate_policy_json,
            reason=args.reason,
        ),
        config,
    ).set_caching_options(False)
    # The run record the gate wrote gets the search's decision and trials, passed or not.
    recorded = io_step(
        record_search(
            search=searched.outputs["trials"],
            decision=verdict.outputs["decision"],
            registry_uri=registry_uri,
            model_name=model_name,
        ),
        config,
        cache=False,
    )

    champion_family = verdict.outputs["Output"]
    with dsl.If(champion_family != "", name="gate-passed"):
        detector = cpu_step(
            fit_drift_detector(
                bundle=verdict.outputs["champion"], train=train_rows, backend=args.drift_backend
            )
        )
        card = model_card(
            bundle=detector.outputs["bundle_with_detector"],
            report=verdict.outputs["champion_report"],
            decision=verdict.outputs["decision"],
            family=champion_family,
            search=searched.outputs["trials"],
        )
        registered = io_step(
            register(
                bundle=card.outputs["carded"],
                registry_uri=registry_uri,
                model_name=model_name,
                decision=verdict.outputs["decision"],
                reason=args.reason,
            ),
            config,
            cache=False,
        )
        # Both steps rewrite the run record: the version number must not overwrite the search.
        registered.after(recorded)
        # The one step that holds the signing key: it signs the manifest right before upload.
        kubernetes.use_secret_as_env(
            registered, secret_name=SIGNING_SECRET, secret_key_to_env=SIGNING_SECRET_KEYS
        )
    return verdict.outputs["decision"]


# The local configuration (kfp.local runs, `trending pipeline run`).
training_pipeline = build_training_pipeline(PipelineConfig())
