"""Every pipeline compiles to KFP IR, and the IR carries the cluster settings the design asks for."""

from __future__ import annotations

import pytest
import yaml

from pipelines.run import PIPELINES, compile_all

IMAGE = "registry.example/trending-components:1.2.3"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    paths = compile_all(tmp_path_factory.mktemp("build"), IMAGE)
    return {p.stem: list(yaml.safe_load_all(p.read_text())) for p in paths}


def executors_of(spec):
    return spec["deploymentSpec"]["executors"]


def test_every_pipeline_compiles_with_the_configured_image_everywhere(compiled):
    assert set(compiled) == set(PIPELINES)
    for spec, *_ in compiled.values():
        assert {e["container"]["image"] for e in executors_of(spec).values()} == {IMAGE}
        commands = " ".join(
            " ".join(e["container"].get("command", [])) for e in executors_of(spec).values()
        )
        assert "pip install" not in commands  # the image carries the locked environment


def test_training_ir_has_gpu_secrets_retries_caching_and_resources(compiled):
    spec, platform = compiled["training"]
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

    bert_executor = tasks[names["train-bert"]]["componentRef"]["name"].replace("comp-", "exec-")
    resources = executors_of(spec)[bert_executor]["container"]["resources"]
    assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert resources["accelerator"]["resourceCount"] == "1"
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert k8s[bert_executor]["nodeSelector"]["labels"] == {
        "trending.dev/accelerator": "nvidia-gpu"
    }
    assert k8s[bert_executor]["tolerations"][0]["key"] == "nvidia.com/gpu"

    for step in (
        "ingest",
        "snapshot",
        "materialize-features",
        "load-features",
        "evaluate-production",
        "gate",
    ):
        env = {e["envVar"] for s in k8s[f"exec-{step}"]["secretAsEnv"] for e in s["keyToEnv"]}
        assert env == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"}, step
    for step in ("ingest", "snapshot", "load-features"):
        assert tasks[step]["retryPolicy"]["maxRetryCount"] == 3
    # Content-addressed steps are cached; steps with side effects or fresh inputs are not.
    assert tasks["snapshot"]["cachingOptions"].get("enableCache") is True
    assert not tasks["ingest"]["cachingOptions"].get("enableCache")
    assert not tasks["gate"]["cachingOptions"].get("enableCache")
    for key, executor in executors_of(spec).items():
        assert "resourceCpuRequest" in executor["container"].get("resources", {}) or key in {
            "exec-validate", "exec-split-dataset", "exec-gate", "exec-model-card"
        }, key  # fmt: skip
    # The registration only happens inside the gate's condition.
    condition = tasks[names["gate-passed"]]
    assert "gate-Output" in condition["triggerPolicy"]["condition"]
    inner = spec["components"][condition["componentRef"]["name"]]["dag"]["tasks"]
    assert {"fit-drift-detector", "model-card", "register"} <= set(inner)


def test_secret_values_never_appear_as_parameters(compiled):
    for spec, *_ in compiled.values():
        params = spec["root"]["inputDefinitions"]["parameters"]
        assert not [
            p for p in params if any(w in p.lower() for w in ("secret", "password", "token", "key"))
        ]
