"""Canary changes to the chart's InferenceService, judged by the kserve 0.20 SDK models.

The chart is the one renderer (ADR 0004): ``trending deploy --dry-run --from-manifest`` on the
manifest ``helm template`` renders without a canary must give the predictor spec ``helm
template`` renders with that canary. Canary fields a mode would ignore are refused.
"""

from __future__ import annotations

import pytest
import yaml
from fixtures.bundles import make_bundle
from fixtures.chart import BASE_VALUES, chart_inference_service, render_manifest
from fixtures.kserve_models import build, check_merge_patch
from typer.testing import CliRunner

from cli import app
from serving.canary.actuators import KServeActuator
from trending.registry import Registry
from trending.rollout.deploy import (
    CanaryFieldIgnoredError,
    DeployError,
    canary_state,
    inference_service_from_manifest,
    merge_patch,
    pinned_version,
    promoted,
    resolve_mode,
    rolled_back,
    with_canary,
    with_canary_traffic,
)

MODES = {"Standard": "standard", "Knative": "knative"}


@pytest.mark.parametrize("chart_mode", MODES)
def test_canary_rollout_on_the_chart_object_matches_kserve_sdk(chart_mode):
    mode = MODES[chart_mode]
    chart = chart_inference_service(chart_mode, stable=3)
    canary = with_canary(chart, mode, 4, 10)
    model = build(canary)
    if mode == "standard":
        assert model.spec.predictor.canary_traffic_percent is None
        assert model.spec.canary[0].traffic_percent == 10
        assert model.spec.canary[0].predictor.name == "v4"
        assert pinned_version(canary["spec"]["canary"][0]["predictor"]) == 4
        assert pinned_version(canary["spec"]["predictor"]) == 3
    else:
        assert model.spec.predictor.canary_traffic_percent == 10 and not model.spec.canary
        assert pinned_version(canary["spec"]["predictor"]) == 4
    patch = merge_patch(chart, canary)
    check_merge_patch(patch)
    assert set(patch) == {"spec"}  # only the canary section: nothing the chart owns elsewhere


def test_a_canary_cannot_be_the_stable_version():
    with pytest.raises(DeployError, match="another version"):
        with_canary(chart_inference_service("Standard", stable=3), "standard", 3, 10)


def test_an_unpinned_predictor_is_refused():
    chart = chart_inference_service("Standard", stable=3)
    args = chart["spec"]["predictor"]["containers"][0]["args"]
    args[args.index("--ref") : args.index("--ref") + 2] = ["--alias", "production"]
    with pytest.raises(DeployError, match="must pin the registry version"):
        with_canary(chart, "standard", 4, 10)


def test_canary_traffic_percent_in_standard_mode_is_refused_by_the_controller():
    isvc = with_canary(chart_inference_service("Knative", stable=3), "knative", 4, 10)
    isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = "RawDeployment"

    class FakeApi:
        patched: list = []

        def get(self, name, namespace):
            return isvc

        def patch(self, name, namespace, patch):
            self.patched.append(patch)

        def detect_mode(self, isvc, configured=None):
            return resolve_mode(annotation="RawDeployment")

    api = FakeApi()
    with pytest.raises(CanaryFieldIgnoredError, match="canaryTrafficPercent is ignored"):
        KServeActuator(api, "genre-classifier", "trending").set_traffic(25)
    assert api.patched == []


def test_traffic_promote_and_rollback_transformations():
    std = with_canary(chart_inference_service("Standard", stable=3), "standard", 4, 10)
    moved = with_canary_traffic(std, "standard", 50)
    assert canary_state(moved, "standard").canary_percent == 50
    up = promoted(moved, "standard")
    assert "canary" not in up["spec"] and up["spec"]["predictor"]["name"] == "v4"
    assert canary_state(up, "standard") == canary_state(up, "standard").__class__(4, None, 0)
    assert "canary" not in rolled_back(moved, "standard")["spec"]
    kn = with_canary(chart_inference_service("Knative", stable=3), "knative", 4, 10)
    assert "canaryTrafficPercent" not in promoted(kn, "knative")["spec"]["predictor"]
    assert rolled_back(kn, "knative")["spec"]["predictor"]["canaryTrafficPercent"] == 0
    for obj in (moved, up, rolled_back(moved, "standard"), promoted(kn, "knative")):
        build(obj)
    check_merge_patch(merge_patch(moved, up))  # spec.canary: null, predictor replaced


def test_mode_resolution():
    assert resolve_mode(annotation="RawDeployment") == "standard"
    assert resolve_mode(configmap_deploy='{"defaultDeploymentMode": "Serverless"}') == "knative"
    assert resolve_mode(configured="standard") == "standard"
    with pytest.raises(DeployError, match="cannot switch modes"):
        resolve_mode(annotation="Serverless", configured="standard")
    with pytest.raises(DeployError, match="ModelMesh"):
        resolve_mode(annotation="ModelMesh")


def test_a_manifest_without_an_inference_service_is_a_clear_error():
    with pytest.raises(DeployError, match="holds 0 InferenceService"):
        inference_service_from_manifest("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")


# ---------------------------------------------------------------- one renderer: the chart


@pytest.fixture
def registry_env(tmp_path, monkeypatch):
    uri = (tmp_path / "registry").as_uri()
    registry = Registry.from_uri(uri, "genre-classifier")
    for n in (1, 2, 3, 4):
        registry.register_version(
            make_bundle(tmp_path, payload=f"v{n}".encode()), actor="test", reason=f"version {n}"
        )
    monkeypatch.setenv("TRENDING_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRENDING_REGISTRY_URI", uri)
    return registry


@pytest.mark.parametrize("chart_mode", MODES)
def test_trending_deploy_dry_run_gives_the_predictor_spec_helm_template_gives(
    registry_env, tmp_path, chart_mode
):
    def values(canary: dict) -> dict:
        return {
            **BASE_VALUES,
            "inferenceService": {
                "deploymentMode": chart_mode,
                "predictor": {"version": 3},
                "canary": canary,
            },
        }

    without = render_manifest(values({"enabled": False}))
    with_canary_rendered = render_manifest(
        values({"enabled": True, "version": 4, "trafficPercent": 10})
    )
    manifest = tmp_path / "isvc.yaml"
    manifest.write_text(without)
    result = CliRunner().invoke(
        app, ["deploy", "4", "--canary", "10", "--dry-run", "--from-manifest", str(manifest)]
    )
    assert result.exit_code == 0, result.output
    ours = build(inference_service_from_manifest(result.output)).spec
    helms = build(inference_service_from_manifest(with_canary_rendered)).spec
    assert ours.predictor == helms.predictor
    assert ours.canary == helms.canary
    assert yaml.safe_load(result.output)["metadata"]["name"] == "genre-classifier"


def test_deploy_refuses_from_manifest_without_dry_run(registry_env, tmp_path):
    manifest = tmp_path / "isvc.yaml"
    manifest.write_text("{}")
    result = CliRunner().invoke(
        app, ["deploy", "4", "--canary", "10", "--from-manifest", str(manifest)]
    )
    assert result.exit_code == 1 and "only works with --dry-run" in result.output
