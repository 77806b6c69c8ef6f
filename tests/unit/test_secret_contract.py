"""One Secret contract, read from the five places that state it, each by its own consumer.

- the compiled IR: the Kubernetes platform spec's ``secretAsEnv`` (what KFP mounts in a step);
- the chart: every ``secretKeyRef`` of every rendered pod (kind scenario) and the values'
  ``platform.kfpNamespace``;
- ``hack/cluster-up.sh --print-secrets``: what the script creates, in which namespace;
- the kustomize overlay: ``kubectl kustomize manifests/overlays/kind`` (the files when kubectl is
  missing);
- docs/kubernetes.md, section "Secrets": its ``kubectl create secret`` commands, parsed as kubectl
  would read their flags.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from test_chart import CHART, load_values, pod_specs, render

from pipelines.run import compile_pipeline
from trending.settings import Settings

REPO = Path(__file__).resolve().parents[2]
Pair = tuple[str, str]  # (Secret name, key)


def secret_refs(objects: list[dict]) -> set[Pair]:
    """(name, key) of every secretKeyRef in the objects' pods."""
    refs = set()
    for obj in objects:
        for _, pod in pod_specs(obj):
            for container in [*pod.get("containers", []), *pod.get("initContainers", [])]:
                for env in container.get("env", []):
                    ref = env.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        refs.add((ref["name"], ref["key"]))
    return refs


@pytest.fixture(scope="module")
def ir_pairs(tmp_path_factory) -> set[Pair]:
    settings = Settings(
        profile="cluster",
        registry_uri="s3://trending/registry",
        data_uri="s3://trending/data",
        redis_host="trending-redis.trending.svc.cluster.local",
    )
    pairs = set()
    for name in ("training", "continuous-training"):
        package = compile_pipeline(name, tmp_path_factory.mktemp("ir"), settings)
        _, platform = yaml.safe_load_all(package.read_text())
        for executor in platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values():
            for mount in executor.get("secretAsEnv", []):
                for item in mount["keyToEnv"]:
                    # The key is exposed under its own name: the same variable the chart sets.
                    assert item["envVar"] == item["secretKey"], item
                    pairs.add((mount["secretName"], item["secretKey"]))
    return pairs


def script_secrets() -> dict[str, set[Pair]]:
    """namespace -> (name, key) that hack/cluster-up.sh creates."""
    out = subprocess.run(
        ["bash", str(REPO / "hack" / "cluster-up.sh"), "--print-secrets"],
        capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"},
    ).stdout  # fmt: skip
    created: dict[str, set[Pair]] = {}
    for line in out.splitlines():
        namespace, name, *keys = line.split()
        created.setdefault(namespace, set()).update((name, key) for key in keys)
    return created


def docs_secrets() -> dict[str, set[Pair]]:
    """namespace -> (name, key) that the docs' Secrets section creates."""
    text = (REPO / "docs" / "kubernetes.md").read_text()
    section = re.search(r"^## Secrets\n(.*?)^## ", text, flags=re.S | re.M)
    assert section, "docs/kubernetes.md has no '## Secrets' section"
    created: dict[str, set[Pair]] = {}
    for block in re.findall(r"```bash\n(.*?)```", section.group(1), flags=re.S):
        for command in block.replace("\\\n", " ").splitlines():
            words = shlex.split(command, comments=True)
            if words[:1] != ["kubectl"] or "secret" not in words:
                continue
            namespace = words[words.index("-n") + 1]
            name = words[words.index("generic") + 1]
            keys = [w.split("=", 2)[1] for w in words if w.startswith("--from-literal=")]
            created.setdefault(namespace, set()).update((name, key) for key in keys)
    return created


def kustomize_objects() -> list[dict]:
    overlay = REPO / "manifests" / "overlays" / "kind"
    if shutil.which("kubectl"):
        out = subprocess.run(
            ["kubectl", "kustomize", str(overlay)], capture_output=True, text=True, check=True
        ).stdout
        return [d for d in yaml.safe_load_all(out) if d]
    files = [*(REPO / "manifests" / "base").glob("*.yaml"),
             *(REPO / "manifests" / "components" / "dev-storage").glob("*.yaml")]  # fmt: skip
    return [d for f in files for d in yaml.safe_load_all(f.read_text()) if d and "kind" in d]


@pytest.fixture(scope="module")
def chart_objects() -> list[dict]:
    return render(load_values(CHART / "ci" / "kind-values.yaml"))


def test_the_ir_mounts_the_chart_s_keys(ir_pairs, chart_objects):
    assert ir_pairs == {
        ("trending-s3", "AWS_ACCESS_KEY_ID"),
        ("trending-s3", "AWS_SECRET_ACCESS_KEY"),
        ("trending-redis", "REDIS_PASSWORD"),
    }
    assert ir_pairs <= secret_refs(chart_objects)


def test_the_kustomize_overlay_references_the_same_secrets(ir_pairs, chart_objects):
    refs = secret_refs(kustomize_objects())
    assert ir_pairs <= refs
    assert refs == secret_refs(chart_objects)


def test_cluster_up_creates_every_secret_where_its_readers_run(ir_pairs, chart_objects):
    created = script_secrets()
    kfp_namespace = load_values(CHART / "values.yaml")["platform"]["kfpNamespace"]
    assert secret_refs(chart_objects) <= created["trending"]  # the release's workloads
    assert ir_pairs <= created[kfp_namespace]  # the pipeline pods
    assert set(created) == {"trending", kfp_namespace}


def test_the_docs_create_the_same_secrets_in_the_same_namespaces(ir_pairs):
    documented = docs_secrets()
    kfp_namespace = load_values(CHART / "values.yaml")["platform"]["kfpNamespace"]
    assert set(documented) == {"trending", kfp_namespace}
    assert documented["trending"] == ir_pairs  # the workloads' S3 and Redis credentials
    assert documented[kfp_namespace] == ir_pairs  # the same, where KFP runs the pipeline pods
