"""The training pipeline: data -> features -> both families + baselines -> gate -> card -> register."""

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
from components.register import register
from components.snapshot import snapshot
from components.split_dataset import split_dataset
from components.train_model import train_model
from components.validate import validate

# Where GPU work may run: the label and taint of the GPU node pool (see kind-config.yaml).
GPU_NODE_LABEL = ("trending.dev/accelerator", "nvidia-gpu")
GPU_TAINT_KEY = "nvidia.com/gpu"
# The Secret holding the S3/MinIO credentials (keys -> environment variables).
S3_SECRET = "trending-s3"  # noqa: S105 - the Secret's name, not its value
S3_SECRET_KEYS = {
    "accessKey": "AWS_ACCESS_KEY_ID",
    "secretKey": "AWS_SECRET_ACCESS_KEY",
    "endpoint": "AWS_ENDPOINT_URL",
}


def with_s3(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """Give a task the object-store credentials from the Secret (never as parameters)."""
    kubernetes.use_secret_as_env(task, secret_name=S3_SECRET, secret_key_to_env=S3_SECRET_KEYS)
    return task


def io_step(task: dsl.PipelineTask, *, cache: bool = True) -> dsl.PipelineTask:
    """An object-store step: credentials, retries with backoff, small resources."""
    with_s3(task)
    task.set_retry(num_retries=3, backoff_duration="15s", backoff_factor=2.0)
    task.set_cpu_request("250m").set_memory_request("512Mi").set_memory_limit("2Gi")
    task.set_caching_options(cache)
    return task


def on_gpu(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """Ask for one GPU on the GPU node pool; kfp.local ignores this and runs on the CPU."""
    task.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(1)
    task.set_cpu_request("2").set_memory_request("8Gi").set_memory_limit("16Gi")
    kubernetes.add_node_selector(task, label_key=GPU_NODE_LABEL[0], label_value=GPU_NODE_LABEL[1])
    kubernetes.add_toleration(task, key=GPU_TAINT_KEY, operator="Exists", effect="NoSchedule")
    return task


def cpu_step(task: dsl.PipelineTask, cpu: str = "1", memory: str = "2Gi") -> dsl.PipelineTask:
    """A compute step on the CPU pool."""
    task.set_cpu_request(cpu).set_memory_request(memory).set_memory_limit(memory)
    return task


@dsl.pipeline(name="genre-training", description="Train, gate and register the genre classifier.")
def training_pipeline(
    data_uri: str,
    feature_repo: str,
    feast_dir: str,
    registry_uri: str,
    model_name: str = "genre-classifier",
    source: str = "snapshot",
    source_params_json: str = "{}",
    max_reject_rate: float = 0.2,
    xgboost_params_json: str = "{}",
    bert_params_json: str = "{}",
    gate_policy_json: str = "{}",
    robustness_cases: int = 200,
    drift_backend: str = "scipy",
    reason: str = "training pipeline",
    seed: int = 7,
) -> Artifact:
    """Wire the steps; the gate decides whether anything is registered.

    Returns the gate's decision (run id, every candidate's verdict, the champion).
    """
    raw = io_step(
        ingest(data_uri=data_uri, source=source, params_json=source_params_json), cache=False
    )
    checked = validate(raw=raw.outputs["raw"], max_reject_rate=max_reject_rate)
    snap = io_step(
        snapshot(
            accepted=checked.outputs["accepted"],
            rejected=checked.outputs["rejected"],
            data_uri=data_uri,
            source=source,
            params_json=source_params_json,
        )
    )
    published = io_step(
        materialize_features(
            data_uri=data_uri,
            snapshot_id=snap.output,
            feature_repo=feature_repo,
            feast_dir=feast_dir,
        ),
        cache=False,
    )
    features = io_step(
        load_features(
            data_uri=data_uri,
            snapshot_id=snap.output,
            feature_repo=feature_repo,
            feast_dir=feast_dir,
        )
    ).after(published)
    split = split_dataset(features=features.outputs["features"], seed=seed)
    train_rows, test_rows = split.outputs["train"], split.outputs["test"]

    def trained(family: str, params_json: str) -> dsl.PipelineTask:
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
                robustness_cases=robustness_cases,
            )
        ).set_display_name(f"evaluate-{family}")

    xgb = cpu_step(trained("xgboost", xgboost_params_json), cpu="2", memory="4Gi")
    bert = on_gpu(trained("bert", bert_params_json))
    linear = cpu_step(trained("linear", "{}"))
    prior = cpu_step(trained("prior", "{}"), cpu="250m", memory="1Gi")
    production = io_step(
        evaluate_production(test=test_rows, registry_uri=registry_uri, model_name=model_name),
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
            policy_json=gate_policy_json,
            reason=reason,
        )
    ).set_caching_options(False)

    champion_family = verdict.outputs["Output"]
    with dsl.If(champion_family != "", name="gate-passed"):
        detector = cpu_step(
            fit_drift_detector(
                bundle=verdict.outputs["champion"], train=train_rows, backend=drift_backend
            )
        )
        card = model_card(
            bundle=detector.outputs["bundle_with_detector"],
            report=verdict.outputs["champion_report"],
            decision=verdict.outputs["decision"],
            family=champion_family,
        )
        io_step(
            register(
                bundle=card.outputs["carded"],
                registry_uri=registry_uri,
                model_name=model_name,
                decision=verdict.outputs["decision"],
                reason=reason,
            ),
            cache=False,
        )
    return verdict.outputs["decision"]
