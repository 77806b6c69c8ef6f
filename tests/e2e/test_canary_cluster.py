"""A canary on a real KServe: on the chart's InferenceService, roll out, step, roll back. Opt-in.

Needs the chart installed (``make cluster-up``) with versions 1 and 2 registered and version 1
as ``inferenceService.predictor.version``; ``-m e2e``.
"""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.e2e


def _cluster():
    try:
        from kubernetes import client, config

        config.load_kube_config()
        client.CustomObjectsApi().list_namespaced_custom_object(
            "serving.kserve.io",
            "v1beta1",
            os.environ.get("TRENDING_NAMESPACE", "trending"),
            "inferenceservices",
            limit=1,
        )
    except Exception as exc:
        pytest.skip(f"no reachable Kubernetes cluster with KServe ({type(exc).__name__}: {exc})")


def test_canary_steps_and_rolls_back_on_kserve():
    _cluster()
    from serving.canary.actuators import KServeActuator
    from serving.canary.kube import KubeInferenceServiceApi

    namespace = os.environ.get("TRENDING_NAMESPACE", "trending")
    name = os.environ.get("TRENDING_INFERENCE_SERVICE", "genre-classifier")
    api = KubeInferenceServiceApi()
    actuator = KServeActuator(api, name, namespace)
    stable = actuator.observe().stable_version
    if stable is None or actuator.observe().canary_version is not None:
        pytest.skip(f"{name} must serve a pinned stable version and no canary to start with")
    canary = int(os.environ.get("TRENDING_E2E_CANARY_VERSION", stable + 1))
    actuator.start_canary(canary, 10)
    actuator.set_traffic(25)
    state = actuator.observe()
    assert (state.canary_version, state.canary_percent) == (canary, 25)
    actuator.rollback()
    state = actuator.observe()
    assert state.canary_version is None and state.canary_percent == 0
