"""Rendered InferenceServices: both modes x both families against the kserve 0.20 SDK models and
the Kubernetes schemas; canary fields a mode would ignore are refused, by render and controller."""

from __future__ import annotations

import kserve.models as kserve_models
import kubernetes.client.models as k8s_models
import kubernetes_validate
import pytest

from serving.canary.actuators import KServeActuator
from trending.rollout.deploy import (
    CanaryFieldIgnoredError,
    DeployError,
    DeploySpec,
    promoted,
    render_inference_service,
    resolve_mode,
    rolled_back,
    with_canary_traffic,
)

K8S = "1.33.0"


def _spec(**kw) -> DeploySpec:
    base = dict(name="genres", model_name="genre-classifier", registry_uri="s3://models/reg",
                image="ghcr.io/trending-now/trending-serving:0.1.0", stable_version=3,
                canary_version=4, canary_percent=10)  # fmt: skip
    return DeploySpec(**{**base, **kw})


def _build(data, klass: str, where: str = "isvc"):
    """Construct the SDK model strictly: unknown fields and wrong types fail."""
    if klass.startswith("list["):
        assert isinstance(data, list), where
        return [_build(x, klass[5:-1], f"{where}[{i}]") for i, x in enumerate(data)]
    if klass.startswith("dict("):
        inner = klass[klass.index(",") + 1 : -1].strip()
        return {k: _build(v, inner, f"{where}.{k}") for k, v in data.items()}
    primitives = {"str": str, "int": int, "bool": bool, "float": (int, float), "object": object}
    if klass in primitives:
        assert isinstance(data, primitives[klass]), f"{where}: {data!r} is not {klass}"
        return data
    cls = getattr(kserve_models, klass, None) or getattr(k8s_models, klass)
    known = {j: a for a, j in cls.attribute_map.items()}
    assert not set(data) - set(known), f"{where}: {klass} has no {sorted(set(data) - set(known))}"
    return cls(**{known[k]: _build(v, cls.openapi_types[known[k]], f"{where}.{k}")
                  for k, v in data.items()})  # fmt: skip


def _sdk(isvc: dict):
    return _build(isvc, "V1beta1InferenceService")


@pytest.mark.parametrize("mode", ["standard", "knative"])
@pytest.mark.parametrize("family", ["xgboost", "bert"])
def test_rendered_isvc_matches_kserve_sdk_and_k8s_schemas(mode, family):
    isvc = render_inference_service(_spec(mode=mode, family=family))
    model = _sdk(isvc)
    predictor = model.spec.predictor
    assert predictor.containers[0].args[-1] == ("4" if mode == "knative" else "3")
    if mode == "standard":
        assert predictor.canary_traffic_percent is None
        assert model.spec.canary[0].traffic_percent == 10
        assert model.spec.canary[0].predictor.name == "v4"
    else:
        assert predictor.canary_traffic_percent == 10 and not model.spec.canary
    limits = predictor.containers[0].resources.limits
    assert ("nvidia.com/gpu" in limits) == (family == "bert")
    assert (predictor.node_selector is not None) == (family == "bert")
    # The standard parts against the Kubernetes schemas (the CRD is not in kubernetes-validate).
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {k: v for k, v in isvc["spec"]["predictor"].items()
                    if k in {"containers", "volumes", "nodeSelector", "tolerations"}}}  # fmt: skip
    kubernetes_validate.validate(pod, K8S, strict=True)


def test_no_gpu_switch_falls_back_to_cpu_for_bert():
    predictor = render_inference_service(_spec(family="bert", gpu=False))["spec"]["predictor"]
    assert "nvidia.com/gpu" not in predictor["containers"][0]["resources"]["limits"]
    assert "nodeSelector" not in predictor and "tolerations" not in predictor


def test_canary_traffic_percent_in_standard_mode_is_refused_by_the_controller():
    isvc = render_inference_service(_spec(mode="knative"))
    isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = "RawDeployment"

    class FakeApi:
        applied: list = []

        def get(self, name, namespace):
            return isvc

        def apply(self, body, *, dry_run=False):
            self.applied.append(body)
            return body

    api = FakeApi()
    actuator = KServeActuator(api, "genres", "default", "standard")
    with pytest.raises(CanaryFieldIgnoredError, match="canaryTrafficPercent is ignored"):
        actuator.set_traffic(25)
    assert api.applied == []


def test_traffic_promote_and_rollback_transformations():
    std = render_inference_service(_spec(mode="standard"))
    moved = with_canary_traffic(std, "standard", 50)
    assert moved["spec"]["canary"][0]["trafficPercent"] == 50
    up = promoted(moved, "standard")
    assert "canary" not in up["spec"] and up["spec"]["predictor"]["name"] == "v4"
    assert "canary" not in rolled_back(moved, "standard")["spec"]
    kn = render_inference_service(_spec(mode="knative"))
    assert "canaryTrafficPercent" not in promoted(kn, "knative")["spec"]["predictor"]
    assert rolled_back(kn, "knative")["spec"]["predictor"]["canaryTrafficPercent"] == 0
    _sdk(up)


def test_mode_resolution():
    assert resolve_mode(annotation="RawDeployment") == "standard"
    assert resolve_mode(configmap_deploy='{"defaultDeploymentMode": "Serverless"}') == "knative"
    assert resolve_mode(configured="standard") == "standard"
    with pytest.raises(DeployError, match="cannot switch modes"):
        resolve_mode(annotation="Serverless", configured="standard")
    with pytest.raises(DeployError, match="ModelMesh"):
        resolve_mode(annotation="ModelMesh")
