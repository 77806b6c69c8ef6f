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
from pipeline_ir import read_package
from test_chart import CHART, load_values, pod_specs, render

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
def ir_pairs(cluster_packages) -> set[Pair]:
    pairs = set()
    for package in cluster_packages.values():
        _, platform = read_package(package)
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
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    ).stdout
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
            keys = [
                w.split("=", 2)[1]
                for w in words
                if w.startswith(("--from-literal=", "--from-file="))
            ]
            created.setdefault(namespace, set()).update((name, key) for key in keys)
    return created


def kustomize_objects() -> list[dict]:
    overlay = REPO / "manifests" / "overlays" / "kind"
    if shutil.which("kubectl"):
        out = subprocess.run(
            ["kubectl", "kustomize", str(overlay)], capture_output=True, text=True, check=True
        ).stdout
        return [d for d in yaml.safe_load_all(out) if d]
    files = [
        *(REPO / "manifests" / "base").glob("*.yaml"),
        *(REPO / "manifests" / "components" / "dev-storage").glob("*.yaml"),
    ]
    return [d for f in files for d in yaml.safe_load_all(f.read_text()) if d and "kind" in d]


@pytest.fixture(scope="module")
def chart_objects() -> list[dict]:
    return render(load_values(CHART / "ci" / "kind-values.yaml"))


# The signing key: mounted into the pipelines' register step and nowhere in the release.
SIGNING = ("trending-bundle-signing", "TRENDING_BUNDLE_SIGNING_KEY")
# What the release's loaders verify bundles with and the drift events' token.
RELEASE_ONLY = {
    ("trending-bundle-public-key", "TRENDING_BUNDLE_PUBLIC_KEY"),
    ("trending-drift-token", "TRENDING_DRIFT_TOKEN"),
}


def test_the_ir_mounts_the_chart_s_keys(ir_pairs, chart_objects):
    assert ir_pairs == {
        ("trending-s3", "AWS_ACCESS_KEY_ID"),
        ("trending-s3", "AWS_SECRET_ACCESS_KEY"),
        ("trending-redis", "REDIS_PASSWORD"),
        SIGNING,
    }
    assert ir_pairs - {SIGNING} <= secret_refs(chart_objects)
    assert SIGNING not in secret_refs(chart_objects)  # the private key stays out of the release


def test_only_the_register_step_holds_the_signing_key(cluster_packages):
    assert set(cluster_packages) == {"training", "continuous-training"}
    for name, package in cluster_packages.items():
        _, platform = read_package(package)
        executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
        holders = {
            executor
            for executor, spec in executors.items()
            for mount in spec.get("secretAsEnv", [])
            if mount["secretName"] == SIGNING[0]
        }
        assert holders == {"exec-register"}, (name, holders)


def test_the_release_s_loaders_get_the_public_key_and_the_drift_token(chart_objects):
    env_by_container = {}
    for obj in chart_objects:
        for where, pod in pod_specs(obj):
            for container in pod["containers"]:
                refs = {
                    env["name"]: (ref["name"], ref["key"])
                    for env in container.get("env", [])
                    if (ref := env.get("valueFrom", {}).get("secretKeyRef"))
                }
                env_by_container[f"{where}/{container['name']}"] = refs
    public = ("trending-bundle-public-key", "TRENDING_BUNDLE_PUBLIC_KEY")
    token = ("trending-drift-token", "TRENDING_DRIFT_TOKEN")
    holders = {name for name, refs in env_by_container.items() if public in refs.values()}
    predictors = {
        n for n in env_by_container if n.startswith("InferenceService/") and "transformer" not in n
    }
    drift = {n for n in env_by_container if "drift-detector" in n}
    assert predictors and drift and holders == predictors | drift
    for name in predictors:  # stable and canary send events with the token
        assert env_by_container[name]["TRENDING_PAYLOAD_LOG_TOKEN"] == token
    for name in drift:
        assert env_by_container[name]["TRENDING_DRIFT_TOKEN"] == token


@pytest.mark.tools  # kubectl kustomize / bash
def test_the_kustomize_overlay_references_the_same_secrets(ir_pairs, chart_objects):
    refs = secret_refs(kustomize_objects())
    assert ir_pairs - {SIGNING} <= refs
    assert refs == secret_refs(chart_objects)


@pytest.mark.tools  # kubectl kustomize / bash
def test_cluster_up_creates_every_secret_where_its_readers_run(ir_pairs, chart_objects):
    created = script_secrets()
    kfp_namespace = load_values(CHART / "values.yaml")["platform"]["kfpNamespace"]
    assert secret_refs(chart_objects) <= created["trending"]  # the release's workloads
    assert ir_pairs <= created[kfp_namespace]  # the pipeline pods
    assert SIGNING not in created["trending"]  # the private key only where the pipelines run
    assert set(created) == {"trending", kfp_namespace}


def test_the_docs_create_the_same_secrets_in_the_same_namespaces(ir_pairs):
    documented = docs_secrets()
    kfp_namespace = load_values(CHART / "values.yaml")["platform"]["kfpNamespace"]
    assert set(documented) == {"trending", kfp_namespace}
    # The workloads' S3 and Redis credentials, the drift token and the public key.
    assert documented["trending"] == (ir_pairs - {SIGNING}) | RELEASE_ONLY
    assert documented[kfp_namespace] == ir_pairs  # where KFP runs the pipeline pods
