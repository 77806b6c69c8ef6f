"""A canary on a real KServe: deploy stable + canary, step traffic, roll back. Opt-in (``-m e2e``)."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.e2e


def _cluster():
    try:
        from kubernetes import client, config

        config.load_kube_config()
        client.CustomObjectsApi().list_namespaced_custom_object(
            "serving.kserve.io", "v1beta1", os.environ.get("TRENDING_NAMESPACE", "default"),
            "inferenceservices", limit=1,
        )  # fmt: skip
    except Exception as exc:
        pytest.skip(f"no reachable Kubernetes cluster with KServe ({type(exc).__name__}: {exc})")


def test_canary_steps_and_rolls_back_on_kserve():
    _cluster()
    from serving.canary.actuators import KServeActuator
    from serving.canary.kube import KubeInferenceServiceApi
    from trending.rollout.deploy import DeploySpec, canary_state, render_inference_service

    namespace = os.environ.get("TRENDING_NAMESPACE", "default")
    registry_uri = os.environ.get("TRENDING_REGISTRY_URI")
    if not registry_uri:
        pytest.skip("set TRENDING_REGISTRY_URI (s3://...) with versions 1 and 2 registered")
    api = KubeInferenceServiceApi()
    mode = api.detect_mode("trending-e2e", namespace)
    spec = DeploySpec(name="trending-e2e", namespace=namespace, model_name="genre-classifier",
                      registry_uri=registry_uri, image=os.environ.get("TRENDING_SERVING_IMAGE",
                      "ghcr.io/trending-now/trending-serving:0.1.0"), mode=mode, stable_version=1,
                      gpu=False)  # fmt: skip
    api.apply(render_inference_service(spec))
    api.apply(
        render_inference_service(
            spec.model_copy(update={"canary_version": 2, "canary_percent": 10})
        )
    )
    actuator = KServeActuator(api, "trending-e2e", namespace, mode)
    actuator.set_traffic(25)
    assert canary_state(api.get("trending-e2e", namespace), mode) == (2, 25)
    actuator.rollback()
    _, percent = canary_state(api.get("trending-e2e", namespace), mode)
    assert percent == 0
