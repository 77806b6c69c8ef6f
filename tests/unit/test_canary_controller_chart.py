"""The chart's canary-controller Deployment and Role, judged by the program itself.

Args and env go through ``serving.canary``'s own parser and settings class, the probes through
the routes its app serves and the port it binds, and the Role's verbs through the requests the
controller really makes (recorded by tests/fakes/kube_api.py during a rollout).
"""

from __future__ import annotations

import json

import helm_python as helm
import pytest
from fakes.kube_api import FakeKubeApi
from fakes.prometheus_api import StubPrometheus, VersionNumbers
from fixtures.bundles import make_bundle
from fixtures.chart import BASE_VALUES, CHART, NAMESPACE, RELEASE, chart_inference_service
from yaml_documents import documents

from serving.canary import __main__ as program
from serving.canary.actuators import KServeActuator
from serving.canary.app import create_app
from serving.canary.controller import LoopStatus, run_canary
from serving.canary.kube import KubeInferenceServiceApi
from serving.canary.reconciler import ControllerMetrics
from trending.monitoring.prom import PrometheusClient
from trending.registry import Registry
from trending.rollout.canary import CanaryPolicy

VERBS = {"GET": "get", "PATCH": "patch", "PUT": "update", "DELETE": "delete", "POST": "create"}


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    helm.disable_logging()
    with helm.Chart.load(CHART) as chart:
        files = chart.render(
            values=json.loads(json.dumps(BASE_VALUES)),
            name=RELEASE,
            namespace=NAMESPACE,
            is_install=True,
        )
    return [d for path, text in files.items() if path.endswith(".yaml") for d in documents(text)]


def _one(objects: list[dict], kind: str, name: str) -> dict:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def _environment(container: dict, objects: list[dict]) -> dict[str, str]:
    """The container's environment as the kubelet would build it (Secrets as placeholders)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(_one(objects, "ConfigMap", source["configMapRef"]["name"])["data"])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        elif "fieldRef" in item["valueFrom"]:
            assert item["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
            env[item["name"]] = NAMESPACE
        else:
            env[item["name"]] = "from-a-secret"
    return env


def test_the_controller_accepts_its_rendered_args_and_env_and_serves_its_probes(objects):
    deployment = _one(objects, "Deployment", "trending-canary-controller")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    command = container.get("command", []) + container["args"]
    assert command[:3] == ["python", "-m", "serving.canary"]
    settings = program.parse(command[3:], _environment(container, objects))
    assert settings.inference_service == "genre-classifier"
    assert settings.namespace == NAMESPACE and settings.registry_uri.startswith("s3://")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    routes = {
        route.path
        for route in create_app(
            LoopStatus(), ControllerMetrics().registry, stale_after_seconds=60
        ).routes
    }
    for probe in ("livenessProbe", "readinessProbe"):
        http = container[probe]["httpGet"]
        assert http["path"] in routes
        port = ports[http["port"]] if isinstance(http["port"], str) else http["port"]
        assert port == settings.port


def test_a_renamed_variable_is_refused(objects):
    deployment = _one(objects, "Deployment", "trending-canary-controller")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = _environment(container, objects)
    env["TRENDING_INFERENCE_SERVICE_NAME"] = env.pop("TRENDING_INFERENCE_SERVICE")
    with pytest.raises(SystemExit) as exit_info:
        program.parse([], env)
    assert exit_info.value.code == 2


def test_the_role_grants_exactly_the_verbs_the_controller_uses(objects, tmp_path):
    role = _one(objects, "Role", "trending-canary-controller")
    granted = {
        verb
        for rule in role["rules"]
        if "inferenceservices" in rule["resources"]
        and rule.get("resourceNames") == ["genre-classifier"]
        for verb in rule["verbs"]
    }
    registry = Registry.from_uri((tmp_path / "registry").as_uri(), "genre-classifier")
    for n in (1, 2):
        registry.register_version(
            make_bundle(tmp_path, payload=f"{n}".encode()), actor="t", reason="r"
        )
    registry.promote(1, actor="t", reason="r")
    registry.set_canary(2, actor="t", reason="r")
    clock = [0.0]
    with FakeKubeApi() as kube, StubPrometheus({1: VersionNumbers(), 2: VersionNumbers()}) as prom:
        kube.put(chart_inference_service("Standard", stable=1))
        api = KubeInferenceServiceApi(kube.client())
        run_canary(
            registry=registry,
            actuator=KServeActuator(api, "genre-classifier", NAMESPACE),
            prometheus=PrometheusClient(prom.url),
            policy=CanaryPolicy(steps=[10]),
            clock=lambda: clock[0],
            sleep=lambda s: clock.__setitem__(0, clock[0] + s),
        )
    used = {VERBS[r.method] for r in kube.requests}
    paths = {r.path for r in kube.requests}
    assert paths == {
        f"/apis/serving.kserve.io/v1beta1/namespaces/{NAMESPACE}/inferenceservices/genre-classifier"
    }
    assert used == granted == {"get", "patch"}
