"""Every pipeline compiles to KFP IR, and the IR carries the cluster settings the design asks for.

The IR is read as KFP reads it: the pipeline spec (document 1) and the Kubernetes platform spec
(document 2) of the uploaded YAML.
"""

from __future__ import annotations

import json

import pytest
from pipeline_ir import CLUSTER, IMAGE, cluster_settings, read_package

from pipelines.cluster import CPU_BERT_PARAMS, PipelineSettingsError
from pipelines.run import PIPELINES, compile_all, compile_pipeline, required_without_default
from trending.settings import Settings


@pytest.fixture(scope="module")
def compiled(tmp_path_factory, cluster_packages):
    """Both pipelines for both accelerators, cluster profile: documents by accelerator and name."""
    gpu = compile_all(
        tmp_path_factory.mktemp("build"), cluster_settings(), accelerator="nvidia.com/gpu"
    )
    return {
        "none": {name: read_package(path) for name, path in cluster_packages.items()},
        "nvidia.com/gpu": {path.stem: read_package(path) for path in gpu},
    }


def executors_of(spec):
    return spec["deploymentSpec"]["executors"]


def task_executor(spec, display_name):
    for dag in [spec["root"], *spec["components"].values()]:
        for task in dag.get("dag", {}).get("tasks", {}).values():
            if task["taskInfo"]["name"] == display_name:
                return spec["components"][task["componentRef"]["name"]]["executorLabel"]
    raise KeyError(display_name)


def test_every_pipeline_compiles_with_the_configured_image_everywhere(compiled):
    for documents in compiled.values():
        assert set(documents) == set(PIPELINES)
    for spec, *_ in compiled["none"].values():
        assert {e["container"]["image"] for e in executors_of(spec).values()} == {IMAGE}
        commands = " ".join(
            " ".join(e["container"].get("command", [])) for e in executors_of(spec).values()
        )
        assert "pip install" not in commands  # the image carries the locked environment


def test_cluster_profile_leaves_no_parameter_without_a_default(compiled, cluster_packages):
    for accelerator in ("none", "nvidia.com/gpu"):
        for name, (spec, *_) in compiled[accelerator].items():
            parameters = spec["root"]["inputDefinitions"]["parameters"]
            defaults = {k: p.get("defaultValue") for k, p in parameters.items()}
            assert defaults["data_uri"] == "s3://trending/data", name
            assert defaults["registry_uri"] == "s3://trending/registry", name
            assert defaults["feature_repo"] == "/app/feature_repo", name
            assert defaults["feature_store_yaml"] == "feature_store.cluster.yaml", name
            assert defaults["feast_dir"] == "", name  # scratch in every pod
    for name, path in cluster_packages.items():
        assert required_without_default(path) == [], name


def test_settings_pipeline_params_become_defaults(tmp_path):
    settings = cluster_settings(pipeline_params={"robustness_cases": "20"})
    spec, *_ = read_package(compile_pipeline("training", tmp_path, settings))
    assert spec["root"]["inputDefinitions"]["parameters"]["robustness_cases"]["defaultValue"] == 20


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"redis_host": None}, "need REDIS_HOST"),
        ({"pipeline_params": {"epochs": "1"}}, "TRENDING_PIPELINE_PARAMS: pipeline"),
        ({"component_image": "r/img@sha256:" + "0" * 64}, "pinned by digest"),
    ],
)
def test_a_missing_or_bad_setting_fails_the_compile(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        compile_pipeline(
            "training", tmp_path, cluster_settings(**changes), accelerator="nvidia.com/gpu"
        )
    assert not list(tmp_path.iterdir())  # nothing half-written to upload


def test_unknown_accelerator_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"not one of none, nvidia\.com/gpu"):
        compile_pipeline("training", tmp_path, cluster_settings(), accelerator="tpu")


def test_resources_on_a_pipeline_used_as_a_step_are_refused_naming_the_call():
    """kfp's check on resource calls holds in this tier too (tests/unit/conftest.py)."""
    from kfp import dsl

    # No annotations: under `from __future__ import annotations` kfp would read strings.
    @dsl.component(base_image="python:3.11")
    def step():
        pass

    @dsl.pipeline
    def inner():
        step().set_cpu_request("1")  # a single-step task takes resources

    @dsl.pipeline
    def outer():
        with pytest.raises(ValueError, match=r"^set_memory_request can only be used on single-st"):
            inner().set_memory_request("1Gi")

    assert outer.pipeline_spec.root.dag.tasks  # the outer pipeline built around the refusal


def test_redis_is_only_needed_on_a_cluster(tmp_path):
    path = compile_pipeline("training", tmp_path, Settings(home=tmp_path / "home"))
    assert required_without_default(path) == []
    assert issubclass(PipelineSettingsError, ValueError)


def test_gpu_choice_requests_a_gpu_on_the_gpu_pool_with_the_cuda_image(compiled):
    spec, platform = compiled["nvidia.com/gpu"]["training"]
    bert = task_executor(spec, "train-bert")
    container = executors_of(spec)[bert]["container"]
    assert container["resources"]["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert container["resources"]["accelerator"]["resourceCount"] == "1"
    assert container["image"] == IMAGE + "-cuda"
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert k8s[bert]["nodeSelector"]["labels"] == {"trending.dev/accelerator": "nvidia-gpu"}
    assert k8s[bert]["tolerations"] == [
        {"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}
    ]
    others = {e["container"]["image"] for k, e in executors_of(spec).items() if k != bert}
    assert others == {IMAGE}
    # The default BERT parameters are the full ones on a GPU.
    assert (
        spec["root"]["inputDefinitions"]["parameters"]["bert_params_json"]["defaultValue"] == "{}"
    )


def test_no_accelerator_keeps_bert_on_the_cpu_pool_with_short_training(compiled):
    for name, (spec, *rest) in compiled["none"].items():
        bert = task_executor(spec, "train-bert")
        container = executors_of(spec)[bert]["container"]
        assert "accelerator" not in container["resources"], name
        assert container["resources"]["resourceCpuRequest"] == "2", name
        assert container["image"] == IMAGE
        k8s = rest[0]["platforms"]["kubernetes"]["deploymentSpec"]["executors"] if rest else {}
        assert "tolerations" not in k8s.get(bert, {}) and "nodeSelector" not in k8s.get(bert, {})
        default = spec["root"]["inputDefinitions"]["parameters"]["bert_params_json"]
        assert json.loads(default["defaultValue"]) == CPU_BERT_PARAMS


def test_training_ir_has_secrets_env_retries_caching_and_resources(compiled):
    spec, platform = compiled["none"]["training"]
    tasks = spec["root"]["dag"]["tasks"]
    names = {t["taskInfo"]["name"]: key for key, t in tasks.items()}
    assert {
        "train-xgboost",
        "train-bert",
        "train-linear",
        "train-prior",
        "gate",
        "gate-passed",
    } <= set(names)
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    s3_steps = (
        "ingest",
        "snapshot",
        "materialize-features",
        "load-features",
        "evaluate-production",
        "gate",
        "register",
    )
    for step in s3_steps:
        mounted = {
            (s["secretName"], k["secretKey"], k["envVar"])
            for s in k8s[f"exec-{step}"]["secretAsEnv"]
            for k in s["keyToEnv"]
        }
        assert {
            ("trending-s3", "AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
            ("trending-s3", "AWS_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
        } <= mounted, step
        env = {
            e["name"]: e["value"] for e in executors_of(spec)[f"exec-{step}"]["container"]["env"]
        }
        assert env["AWS_ENDPOINT_URL"] == CLUSTER["s3_endpoint"], step
        assert (
            env["REDIS_HOST"] == CLUSTER["redis_host"]
            and env["FEAST_REGISTRY_BUCKET"] == "trending"
        )
    for step in ("materialize-features", "load-features"):
        names_mounted = {s["secretName"] for s in k8s[f"exec-{step}"]["secretAsEnv"]}
        assert names_mounted == {"trending-s3", "trending-redis"}, step
    for step in ("ingest", "snapshot", "load-features"):
        assert tasks[step]["retryPolicy"]["maxRetryCount"] == 3
    # Content-addressed steps are cached; steps with side effects or fresh inputs are not.
    assert tasks["snapshot"]["cachingOptions"].get("enableCache") is True
    assert not tasks["ingest"]["cachingOptions"].get("enableCache")
    assert not tasks["gate"]["cachingOptions"].get("enableCache")
    for key, executor in executors_of(spec).items():
        assert "resourceCpuRequest" in executor["container"].get("resources", {}) or key in {
            "exec-validate",
            "exec-split-dataset",
            "exec-gate",
            "exec-model-card",
        }, key
    # The registration only happens inside the gate's condition.
    condition = tasks[names["gate-passed"]]
    assert "gate-Output" in condition["triggerPolicy"]["condition"]
    inner = spec["components"][condition["componentRef"]["name"]]["dag"]["tasks"]
    assert {"fit-drift-detector", "model-card", "register"} <= set(inner)


def test_secret_values_never_appear_as_parameters(compiled):
    for spec, *_ in compiled["none"].values():
        params = spec["root"]["inputDefinitions"]["parameters"]
        assert not [
            p for p in params if any(w in p.lower() for w in ("secret", "password", "token", "key"))
        ]
        for executor in executors_of(spec).values():
            env = {e["name"] for e in executor["container"].get("env", [])}
            assert not {"AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "REDIS_PASSWORD"} & env
