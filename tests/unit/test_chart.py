"""The Helm chart, rendered by the real Helm v4 engine (helm-python-sdk), checked object by object.

Built-in kinds are validated against the Kubernetes JSON schemas (kubernetes-validate, strict),
KServe objects against the kserve SDK models, PrometheusRules with promtool, and every pod against
the Pod Security "restricted" profile. The policy helpers here are shared with test_manifests.py.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kserve.models as kserve_models
import kubernetes.client.models as k8s_models
import pytest
import yaml
from kubernetes_validate.utils import schema_contents
from referencing import Registry, Resource
from yaml_documents import documents
from yaml_documents import load as load_yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "trending"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
RULES_FILE = CHART / "files" / "trending.rules.yml"
KUBERNETES_VERSION = "1.32.0"
RELEASE, NAMESPACE = "trending", "trending"

Obj = dict[str, Any]

# Custom resources the chart or the overlays may render, and who checks them.
KSERVE_KINDS = {("serving.kserve.io/v1beta1", "InferenceService"): "V1beta1InferenceService"}
MONITORING_KINDS = {
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig"),
}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}
LONG_RUNNING_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "InferenceService"}
RECOMMENDED_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
)
# Strings that must never be a credential, whatever a values file or overlay says.
WEAK_SECRETS = {
    "minio",
    "minio123",
    "minioadmin",
    "password",
    "changeme",
    "admin",
    "secret",
    "redis",
}


# ---------------------------------------------------------------- rendering


def load_values(path: Path) -> Obj:
    """A values file as a dict."""
    return load_yaml(path.read_text()) or {}


helm.disable_logging()  # Helm logs each symlink it follows (files/trending.rules.yml)


def render_files(values: Obj | None = None) -> dict[str, str]:
    """Render the chart offline; template path -> rendered text."""
    with helm.Chart.load(CHART) as chart:
        return chart.render(values=values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True)


def parse_documents(text: str) -> list[Obj]:
    """Every non-empty YAML document of a multi-document string."""
    return documents(text)


def render(values: Obj | None = None) -> list[Obj]:
    """Render the chart and return its Kubernetes objects (NOTES.txt excluded)."""
    files = render_files(values)
    return [
        obj
        for path, text in sorted(files.items())
        if path.endswith((".yaml", ".yml"))
        for obj in parse_documents(text)
    ]


def by_kind(objects: list[Obj], kind: str) -> list[Obj]:
    """The objects of one kind."""
    return [obj for obj in objects if obj["kind"] == kind]


def one(objects: list[Obj], kind: str, name: str) -> Obj:
    """The single object of that kind and name."""
    found = [obj for obj in by_kind(objects, kind) if obj["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def env_of(container: Obj) -> dict[str, Any]:
    """A container's env as name -> value or valueFrom."""
    return {
        item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", [])
    }


# ---------------------------------------------------------------- schema checks


def _model_from_dict(data: Any, klass: str, where: str) -> Any:
    """Build a kserve/kubernetes SDK model from a dict, refusing unknown fields and wrong types."""
    if klass.startswith("list["):
        assert isinstance(data, list), f"{where}: expected a list, got {data!r}"
        return [_model_from_dict(item, klass[5:-1], f"{where}[{i}]") for i, item in enumerate(data)]
    if klass.startswith("dict("):
        assert isinstance(data, dict), f"{where}: expected a map, got {data!r}"
        inner = klass[klass.index(",") + 1 : -1].strip()
        return {
            key: _model_from_dict(value, inner, f"{where}.{key}") for key, value in data.items()
        }
    primitives: dict[str, tuple[type, ...]] = {
        "str": (str,),
        "int": (int,),
        "bool": (bool,),
        "float": (int, float),
        "datetime": (str,),
        "object": (object,),
    }
    if klass in primitives:
        assert isinstance(data, primitives[klass]), f"{where}: expected {klass}, got {data!r}"
        return data
    cls = getattr(kserve_models, klass, None) or getattr(k8s_models, klass)
    assert isinstance(data, dict), f"{where}: expected a {klass} object, got {data!r}"
    known = {json_key: attr for attr, json_key in cls.attribute_map.items()}
    unknown = sorted(set(data) - set(known))
    assert not unknown, f"{where}: {klass} has no field(s) {unknown}"
    kwargs = {
        known[key]: _model_from_dict(value, cls.openapi_types[known[key]], f"{where}.{key}")
        for key, value in data.items()
    }
    return cls(**kwargs)


SCHEMA_DIR = f"kubernetes-json-schema/v{KUBERNETES_VERSION}-local-strict"


@functools.cache
def _schema_definitions() -> Resource:
    return Resource.from_contents(
        schema_contents(f"{SCHEMA_DIR}/_definitions.json", KUBERNETES_VERSION)
    )


@functools.cache
def kubernetes_validator(api_version: str, kind: str) -> jsonschema.Validator:
    """The strict Kubernetes JSON schema of one kind (kubernetes-validate's files), built once."""
    group = re.sub(
        r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version
    )  # rbac.authorization.k8s.io/v1 -> rbac-v1
    try:
        schema = schema_contents(f"{SCHEMA_DIR}/{kind.lower()}-{group}.json", KUBERNETES_VERSION)
    except FileNotFoundError:
        pytest.fail(f"no Kubernetes {KUBERNETES_VERSION} schema for {api_version} {kind}")
    registry = Resource.from_contents(schema) @ (_schema_definitions() @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def validate_object(obj: Obj) -> None:
    """Validate one object: Kubernetes schemas, KServe SDK models, or the monitoring CR shape."""
    key = (obj.get("apiVersion"), obj.get("kind"))
    where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    if key in KSERVE_KINDS:
        _model_from_dict(obj, KSERVE_KINDS[key], where)
    elif key in MONITORING_KINDS:
        assert isinstance(obj.get("spec"), dict) and obj["spec"], f"{where}: empty spec"
        assert set(obj) <= {"apiVersion", "kind", "metadata", "spec"}, (
            f"{where}: unexpected top-level keys"
        )
    else:
        kubernetes_validator(obj["apiVersion"], obj["kind"]).validate(obj)


# ---------------------------------------------------------------- policy


def pod_specs(obj: Obj) -> Iterator[tuple[str, Obj]]:
    """(where, pod spec) for every pod template in an object, KServe components included."""
    kind, name = obj["kind"], obj["metadata"]["name"]
    spec = obj.get("spec", {})
    if kind == "Pod":
        yield f"Pod/{name}", spec
    elif kind == "CronJob":
        yield f"CronJob/{name}", spec["jobTemplate"]["spec"]["template"]["spec"]
    elif kind in WORKLOAD_KINDS:
        yield f"{kind}/{name}", spec["template"]["spec"]
    elif kind == "InferenceService":
        for component in ("predictor", "transformer", "explainer"):
            if component in spec:
                yield f"InferenceService/{name}.{component}", spec[component]
        for index, canary in enumerate(spec.get("canary", [])):
            yield f"InferenceService/{name}.canary[{index}]", canary["predictor"]


def restricted_violations(where: str, pod: Obj) -> list[str]:
    """Pod Security Standards "restricted" checks on one pod spec."""
    problems: list[str] = []
    pod_sc = pod.get("securityContext", {})
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            problems.append(f"{where}: {field} is set")
    for volume in pod.get("volumes", []):
        allowed = {
            "configMap",
            "csi",
            "downwardAPI",
            "emptyDir",
            "ephemeral",
            "persistentVolumeClaim",
            "projected",
            "secret",
        }
        kinds = set(volume) - {"name"}
        if not kinds <= allowed:
            problems.append(f"{where}: volume {volume['name']} uses {sorted(kinds - allowed)}")
    for container in pod.get("initContainers", []) + pod.get("containers", []):
        cname = f"{where}/{container['name']}"
        sc = container.get("securityContext", {})
        if sc.get("privileged"):
            problems.append(f"{cname}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{cname}: allowPrivilegeEscalation is not false")
        if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
            problems.append(f"{cname}: runAsNonRoot is not true")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            problems.append(f"{cname}: runs as UID 0")
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{cname}: seccompProfile is {seccomp!r}")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            problems.append(f"{cname}: capabilities do not drop ALL")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{cname}: adds capabilities {caps['add']}")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{cname}: root filesystem is writable")
        for port in container.get("ports", []):
            if port.get("hostPort"):
                problems.append(f"{cname}: hostPort {port['hostPort']}")
    return problems


def workload_violations(obj: Obj) -> list[str]:
    """Resource requests on every container; probes on every long-running one."""
    problems: list[str] = []
    for where, pod in pod_specs(obj):
        for container in pod.get("initContainers", []) + pod.get("containers", []):
            cname = f"{where}/{container['name']}"
            requests = container.get("resources", {}).get("requests", {})
            if not {"cpu", "memory"} <= set(requests):
                problems.append(f"{cname}: no cpu and memory requests")
            if obj["kind"] in LONG_RUNNING_KINDS and container in pod.get("containers", []):
                for probe in ("livenessProbe", "readinessProbe"):
                    if probe not in container:
                        problems.append(f"{cname}: no {probe}")
    return problems


def secret_violations(obj: Obj, literals: set[str]) -> list[str]:
    """No rendered Secret may carry a value: credentials are created outside the chart.

    A value in a rendered Secret sits in the release history and changes on every upgrade;
    weak or values-file strings are named as such, since they are worse still.
    """
    where = f"Secret/{obj['metadata']['name']}"
    problems = [f"{where}: stringData carries literal {key}" for key in obj.get("stringData", {})]
    for key, encoded in obj.get("data", {}).items():
        value = base64.b64decode(encoded).decode()
        if value.lower() in WEAK_SECRETS or value in literals or len(value) < 24:
            problems.append(f"{where}: {key} is a literal or weak value")
        else:
            problems.append(f"{where}: {key} carries a rendered value (create the Secret outside)")
    return problems


def rbac_violations(obj: Obj) -> list[str]:
    """No cluster-wide grants; no wildcard verbs, resources or API groups."""
    where = f"{obj['kind']}/{obj['metadata']['name']}"
    if obj["kind"] in ("ClusterRole", "ClusterRoleBinding"):
        return [f"{where}: cluster-wide RBAC"]
    problems: list[str] = []
    for rule in obj.get("rules", []):
        for field in ("verbs", "resources", "apiGroups"):
            if "*" in rule.get(field, []):
                problems.append(f"{where}: wildcard in {field}")
    return problems


def policy_violations(objects: list[Obj], literals: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    """Every security and operability rule over a set of objects; [] when all pass."""
    problems: list[str] = []
    for obj in objects:
        for where, pod in pod_specs(obj):
            problems += restricted_violations(where, pod)
        problems += workload_violations(obj)
        if obj["kind"] == "Secret":
            problems += secret_violations(obj, set(literals))
        if obj["kind"] in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"):
            problems += rbac_violations(obj)
    return problems


def string_leaves(data: Any) -> set[str]:
    """Every string anywhere in a values document (candidate literals)."""
    if isinstance(data, dict):
        return set().union(*(string_leaves(v) for v in data.values())) if data else set()
    if isinstance(data, list):
        return set().union(*(string_leaves(v) for v in data)) if data else set()
    return {data} if isinstance(data, str) and data else set()


def promtool_check(groups: Obj, tmp_path: Path) -> None:
    """`promtool check rules` on a rule-groups document; skips when promtool is missing."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not found: apt-get install prometheus (make test installs it)")
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump(groups))
    result = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def scenarios() -> dict[str, list[Obj]]:
    """Each ci/*-values.yaml scenario rendered once."""
    return {path.name.removesuffix("-values.yaml"): render(load_values(path)) for path in CI_VALUES}


def test_ci_scenarios_cover_the_issue() -> None:
    names = {path.name.removesuffix("-values.yaml") for path in CI_VALUES}
    assert {"minimal", "kind", "production", "gpu", "monitoring-off"} <= names


# ---------------------------------------------------------------- lint and schema


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.name)
def test_lint_reports_no_warning_or_error(values_file: Path) -> None:
    report = helm.lint(CHART, load_values(values_file), strict=True, namespace=NAMESPACE)
    serious = [m for m in report["messages"] if m["severity"] >= 2]
    assert serious == [] and report["errors"] == []


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"inferenceService": {"deploymentMode": "Serverless"}},
            "value must be one of 'Standard', 'Knative'",
        ),
        (
            {"inferenceService": {"canary": {"trafficPercent": 150}}},
            "/inferenceService/canary/trafficPercent",
        ),
        ({"bogus": True}, "additional properties 'bogus' not allowed"),
        ({"minio": {"persistence": {"sise": "1Gi"}}}, "additional properties 'sise' not allowed"),
        ({"containerSecurityContext": {"allowPrivilegeEscalation": True}}, "value must be false"),
        ({"podSecurityContext": {"runAsNonRoot": False}}, "value must be true"),
        ({"images": {"serving": {"digest": "latest"}}}, "/images/serving/digest"),
        (
            {"monitoring": {"prometheusOperator": "yes"}},
            "value must be one of 'auto', 'enabled', 'disabled'",
        ),
        ({"featureStore": {"replicas": "two"}}, "/featureStore/replicas"),
        (
            {"networkPolicy": {"externalEgressCidrs": ["everywhere"]}},
            "/networkPolicy/externalEgressCidrs/0",
        ),
    ],
)
def test_schema_rejects_bad_values_with_a_clear_message(values: Obj, message: str) -> None:
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError) as error:
        chart.validate_schema(values)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"featureStore": {"redis": {"host": "redis.data"}}}, "existingSecret is required"),
        (
            {"credentials": {"generate": True}, "featureStore": {"redis": {"enabled": False}}},
            "featureStore.redis.host is required",
        ),
        (
            {
                "credentials": {"generate": True},
                "featureStore": {"redis": {"enabled": True}},
                "minio": {"enabled": True},
                "s3": {"endpoint": "https://s3.example"},
            },
            "minio.enabled and s3.endpoint are both set",
        ),
        (
            {
                "credentials": {"generate": True},
                "featureStore": {"redis": {"enabled": True}},
                "inferenceService": {"canary": {"enabled": True, "version": 1}},
            },
            "the canary must serve another registry version",
        ),
        (
            {
                "credentials": {"generate": True},
                "featureStore": {"redis": {"enabled": True}},
                "driftDetector": {"enabled": False},
            },
            "set driftDetector.enabled=true or inferenceService.payloadLog.enabled=false",
        ),
    ],
)
def test_inconsistent_values_fail_rendering_with_advice(values: Obj, message: str) -> None:
    with pytest.raises(helm.HelmRenderError) as error:
        render(values)
    assert message in str(error.value)


def test_every_value_is_documented_in_one_comment_style_and_camel_case() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    free_maps = {"commonLabels", "selectorLabels", "annotations", "labels", "nodeSelector"}
    parents: list[tuple[int, str]] = []
    problems = []
    list_item_indent = 10**6  # keys inside list items (e.g. tolerations) are data, not values
    for index, line in enumerate(lines):
        item = re.match(r"^(\s*)- ", line)
        if item:
            list_item_indent = len(item.group(1)) + 2
            continue
        match = re.match(r"^(\s*)([^\s#-][^:]*):", line)
        if not match:
            continue
        indent, key = len(match.group(1)), match.group(2)
        if indent >= list_item_indent:
            continue
        list_item_indent = 10**6
        parents = [(i, k) for i, k in parents if i < indent]
        in_free_map = bool(parents) and parents[-1][1] in free_maps
        if not in_free_map and not re.fullmatch(r"[a-z][a-zA-Z0-9]*", key):
            problems.append(f"line {index + 1}: {key!r} is not camelCase")
        if not lines[index - 1].strip().startswith("# -- "):
            problems.append(f"line {index + 1}: {key!r} has no '# -- ' comment above it")
        parents.append((indent, key))
    assert problems == []


def test_schema_forbids_unknown_keys_at_every_level() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())

    def open_objects(node: Obj, path: str) -> Iterator[str]:
        if node.get("type") == "object" and "properties" in node:
            if node.get("additionalProperties") is not False:
                yield path
            if not node.get("required"):
                yield f"{path} (nothing required)"
            for key, child in node["properties"].items():
                yield from open_objects(child, f"{path}.{key}")

    assert list(open_objects(schema, "$")) == []
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(chart.values)  # the defaults themselves are valid


# ---------------------------------------------------------------- every object


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.name)
def test_every_rendered_object_is_valid_and_labelled(values_file: Path) -> None:
    objects = render(load_values(values_file))
    assert len(objects) > 10
    for obj in objects:
        validate_object(obj)
        labels = obj["metadata"].get("labels", {})
        missing = [label for label in RECOMMENDED_LABELS if label not in labels]
        assert missing == [], f"{obj['kind']}/{obj['metadata']['name']} lacks {missing}"
        assert labels["app.kubernetes.io/part-of"] == "trending-now"


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.name)
def test_every_pod_secret_and_role_meets_the_policy(values_file: Path) -> None:
    values = load_values(values_file)
    defaults = load_values(CHART / "values.yaml")
    assert policy_violations(render(values), string_leaves(values) | string_leaves(defaults)) == []


def test_policy_checks_catch_what_they_claim_to() -> None:
    pod = {
        "containers": [{"name": "app", "image": "x", "securityContext": {"privileged": True}}],
        "hostNetwork": True,
    }
    bad = [
        {"kind": "Deployment", "metadata": {"name": "root"}, "spec": {"template": {"spec": pod}}},
        {
            "kind": "Secret",
            "metadata": {"name": "s3"},
            "data": {"AWS_SECRET_ACCESS_KEY": base64.b64encode(b"minio123").decode()},
        },
        {"kind": "Secret", "metadata": {"name": "t"}, "stringData": {"TOKEN": "x"}},
        {
            "kind": "Secret",
            "metadata": {"name": "g"},
            "data": {"TOKEN": base64.b64encode(b"q7Vx" * 10).decode()},
        },
        {
            "kind": "Role",
            "metadata": {"name": "all"},
            "rules": [{"apiGroups": [""], "resources": ["*"], "verbs": ["*"]}],
        },
        {"kind": "ClusterRole", "metadata": {"name": "c"}, "rules": []},
    ]
    text = "\n".join(policy_violations(bad))
    for expected in (
        "hostNetwork is set",
        "privileged",
        "allowPrivilegeEscalation is not false",
        "runAsNonRoot is not true",
        "capabilities do not drop ALL",
        "root filesystem is writable",
        "no cpu and memory requests",
        "no livenessProbe",
        "Secret/s3: AWS_SECRET_ACCESS_KEY is a literal or weak value",
        "Secret/g: TOKEN carries a rendered value",
        "stringData carries literal TOKEN",
        "wildcard in verbs",
        "wildcard in resources",
        "ClusterRole/c: cluster-wide RBAC",
    ):
        assert expected in text


@pytest.mark.parametrize("scenario", ["kind", "gpu", "monitoring-off"])
def test_dev_scenarios_render_no_secret_and_use_the_ones_cluster_up_creates(
    scenarios: dict[str, list[Obj]], scenario: str
) -> None:
    objects = scenarios[scenario]
    assert by_kind(objects, "Secret") == []
    referenced = {
        (ref["name"], ref["key"])
        for obj in objects
        for _, pod in pod_specs(obj)
        for container in [*pod.get("containers", []), *pod.get("initContainers", [])]
        for ref in [
            e["valueFrom"]["secretKeyRef"]
            for e in container.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        ]
    }
    # hack/cluster-up.sh creates these (tests/unit/test_secret_contract.py reads the script).
    assert referenced >= {
        ("trending-s3", "AWS_ACCESS_KEY_ID"),
        ("trending-s3", "AWS_SECRET_ACCESS_KEY"),
        ("trending-redis", "REDIS_PASSWORD"),
    }
    assert {name for name, _ in referenced} <= {
        "trending-s3",
        "trending-redis",
        "trending-retrain-trigger",
        "trending-drift-token",
        "trending-bundle-public-key",
        "trending-drift-feedback",
    }


def test_production_renders_no_secret_and_references_existing_ones(
    scenarios: dict[str, list[Obj]],
) -> None:
    objects = scenarios["production"]
    assert by_kind(objects, "Secret") == []
    drift = one(objects, "Deployment", "trending-drift-detector")["spec"]["template"]["spec"][
        "containers"
    ][0]
    env = env_of(drift)
    assert env["AWS_SECRET_ACCESS_KEY"] == {
        "secretKeyRef": {"name": "trending-s3", "key": "AWS_SECRET_ACCESS_KEY"}
    }
    assert drift["envFrom"] == [{"configMapRef": {"name": "trending-settings"}}]
    settings = one(objects, "ConfigMap", "trending-settings")["data"]
    assert settings["AWS_ENDPOINT_URL"] == "https://s3.eu-west-1.amazonaws.com"
    assert settings["TRENDING_REGISTRY_URI"] == "s3://trending-prod/registry"
    assert settings["REDIS_HOST"] == "trending-redis.data.svc.cluster.local"
    assert not any(word in key for key in settings for word in ("SECRET", "PASSWORD", "TOKEN"))
    assert not by_kind(objects, "StatefulSet"), "production must not run MinIO or Redis"


def test_production_pins_every_project_image_by_digest(scenarios: dict[str, list[Obj]]) -> None:
    images = [
        container["image"]
        for obj in scenarios["production"]
        for _, pod in pod_specs(obj)
        for container in pod.get("initContainers", []) + pod["containers"]
    ]
    assert images and all(re.search(r":0\.1\.0@sha256:[0-9a-f]{64}$", image) for image in images)


# ---------------------------------------------------------------- InferenceService


def _predictor_settings(predictor: Obj):
    """(KServe args, settings) of a rendered predictor, as python -m serving.predictor parses it."""
    from serving.predictor.__main__ import parse

    args = [str(a) for a in predictor["containers"][0]["args"]]
    assert args[:3] == ["python", "-m", "serving.predictor"]
    return parse(args[3:], {})


def _served_version(predictor: Obj) -> str:
    """The registry ref a rendered predictor serves, as python -m serving.predictor parses it."""
    from serving.predictor.__main__ import parse

    args = [str(a) for a in predictor["containers"][0]["args"]]
    assert args[:3] == ["python", "-m", "serving.predictor"]
    return parse(args[3:], {})[1].ref


def test_standard_mode_canary_is_a_second_predictor_on_a_pinned_version(
    scenarios: dict[str, list[Obj]],
) -> None:
    isvc = one(scenarios["kind"], "InferenceService", "genre-classifier")
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    stable, canaries = isvc["spec"]["predictor"], isvc["spec"]["canary"]
    assert len(canaries) == 1 and canaries[0]["trafficPercent"] == 10
    served = {
        "stable": _served_version(stable),
        "canary": _served_version(canaries[0]["predictor"]),
    }
    assert served == {
        "stable": "1",
        "canary": "2",
    }  # values.yaml: predictor.version, canary.version
    assert canaries[0]["predictor"]["name"] == "v2"  # as `trending deploy` names it
    assert canaries[0]["predictor"]["labels"]["trending.dev/track"] == "canary"
    # No KServe logger (it cannot send the drift token): the predictors' own payload logger.
    assert "logger" not in stable and "logger" not in canaries[0]["predictor"]
    for track, predictor in (("stable", stable), ("canary", canaries[0]["predictor"])):
        _, settings = _predictor_settings(predictor)
        assert settings.payload_log_url == (
            "http://trending-drift-detector.trending.svc.cluster.local:8080/"
        )
        assert settings.endpoint == track


def test_knative_mode_canary_uses_canary_traffic_percent() -> None:
    values = load_values(CHART / "ci" / "kind-values.yaml")
    values["inferenceService"]["deploymentMode"] = "Knative"
    values["inferenceService"]["canary"]["version"] = 5
    isvc = one(render(values), "InferenceService", "genre-classifier")
    predictor = isvc["spec"]["predictor"]
    assert "canary" not in isvc["spec"]
    assert predictor["canaryTrafficPercent"] == 10
    assert _served_version(predictor) == "5"  # the latest revision serves the canary version
    assert [p["containerPort"] for p in predictor["containers"][0]["ports"]] == [
        8080
    ]  # Knative: one port


def test_kind_gpu_variant_schedules_on_the_tainted_node_without_requesting_a_gpu(
    scenarios: dict[str, list[Obj]],
) -> None:
    isvc = one(scenarios["kind"], "InferenceService", "genre-classifier")
    for predictor in (isvc["spec"]["predictor"], isvc["spec"]["canary"][0]["predictor"]):
        assert predictor["nodeSelector"] == {"trending.dev/accelerator": "nvidia-gpu"}
        assert predictor["tolerations"] == [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]
        assert "nvidia.com/gpu" not in predictor["containers"][0]["resources"].get("limits", {})
    kind_config = yaml.safe_load((REPO_ROOT / "kind-config.yaml").read_text())
    gpu_nodes = [
        n
        for n in kind_config["nodes"]
        if n.get("labels", {}).get("trending.dev/accelerator") == "nvidia-gpu"
    ]
    assert len(gpu_nodes) == 1
    (join_patch,) = gpu_nodes[0]["kubeadmConfigPatches"]
    taints = yaml.safe_load(join_patch)["nodeRegistration"]["taints"]
    assert taints == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]


def test_gpu_variant_requests_one_gpu_per_predictor(scenarios: dict[str, list[Obj]]) -> None:
    isvc = one(scenarios["gpu"], "InferenceService", "genre-classifier")
    for predictor in (isvc["spec"]["predictor"], isvc["spec"]["canary"][0]["predictor"]):
        assert predictor["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    cpu = one(scenarios["minimal"], "InferenceService", "genre-classifier")["spec"]["predictor"]
    assert "nodeSelector" not in cpu and "nvidia.com/gpu" not in json.dumps(cpu)


# ---------------------------------------------------------------- RBAC and network


@pytest.mark.parametrize("scenario", ["minimal", "kind", "production"])
def test_only_the_canary_controller_may_touch_the_api_and_only_its_inference_service(
    scenarios: dict[str, list[Obj]], scenario: str
) -> None:
    objects = scenarios[scenario]
    assert not by_kind(objects, "ClusterRole") and not by_kind(objects, "ClusterRoleBinding")
    (role,) = by_kind(objects, "Role")
    assert role["metadata"]["namespace"] == NAMESPACE
    writes = [r for r in role["rules"] if {"patch", "update"} & set(r["verbs"])]
    assert writes == [
        {
            "apiGroups": ["serving.kserve.io"],
            "resources": ["inferenceservices"],
            "resourceNames": ["genre-classifier"],
            "verbs": ["get", "patch"],
        }
    ]
    tokens = {
        sa["metadata"]["name"]
        for sa in by_kind(objects, "ServiceAccount")
        if sa["automountServiceAccountToken"]
    }
    assert tokens == {"trending-canary-controller"}
    (binding,) = by_kind(objects, "RoleBinding")
    assert binding["subjects"][0]["name"] == "trending-canary-controller"


def _selected(selector: Obj, labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def test_network_policies_deny_by_default_and_allow_each_component(
    scenarios: dict[str, list[Obj]],
) -> None:
    objects = scenarios["kind"]
    policies = by_kind(objects, "NetworkPolicy")
    deny = one(objects, "NetworkPolicy", "trending-default-deny")["spec"]
    assert (
        set(deny["policyTypes"]) == {"Ingress", "Egress"}
        and "ingress" not in deny
        and "egress" not in deny
    )
    pod_labels = []
    for obj in objects:
        for where, pod in pod_specs(obj):
            labels = pod.get("labels") or obj["spec"].get("template", {}).get("metadata", {}).get(
                "labels", {}
            )
            pod_labels.append((where, labels))
    assert len(pod_labels) >= 8
    for where, labels in pod_labels:
        assert _selected(deny["podSelector"], labels), f"{where} escapes the default deny"
        own = [
            p
            for p in policies
            if p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/component")
            == labels["app.kubernetes.io/component"]
        ]
        assert own, f"{where} has no allow policy of its own"
    trigger = one(objects, "NetworkPolicy", "trending-retrain-trigger")["spec"]
    assert trigger["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    minio_port = {"port": 9000, "protocol": "TCP"}
    assert (
        minio_port
        in one(objects, "NetworkPolicy", "trending-predictor")["spec"]["egress"][0]["ports"]
    )


# ---------------------------------------------------------------- monitoring


def test_monitoring_objects_follow_the_switch(scenarios: dict[str, list[Obj]]) -> None:
    monitoring = {kind for _, kind in MONITORING_KINDS}
    assert {o["kind"] for o in scenarios["kind"]} >= monitoring
    assert not {o["kind"] for o in scenarios["monitoring-off"]} & monitoring
    assert [c["metadata"]["name"] for c in by_kind(scenarios["monitoring-off"], "ConfigMap")] == [
        "trending-settings"
    ]
    # "auto" renders them only when the cluster serves monitoring.coreos.com/v1 (not offline).
    auto = load_values(CHART / "ci" / "kind-values.yaml")
    auto["monitoring"]["prometheusOperator"] = "auto"
    assert not {o["kind"] for o in render(auto)} & monitoring
    notes = render_files(auto)["trending/templates/NOTES.txt"]
    assert "the cluster does not serve monitoring.coreos.com/v1" in notes


@pytest.mark.tools  # promtool
def test_prometheus_rule_is_the_rules_file_and_passes_promtool(
    scenarios: dict[str, list[Obj]], tmp_path: Path
) -> None:
    rule = one(scenarios["kind"], "PrometheusRule", "trending-rules")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"] == yaml.safe_load(RULES_FILE.read_text())
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}
    assert {"DriftDetected", "ModelStale", "HighErrorRate", "HighLatencyP95"} <= alerts
    promtool_check(rule["spec"], tmp_path)


def test_rules_have_one_source_of_truth() -> None:
    source = REPO_ROOT / "monitoring" / "rules" / "trending.rules.yml"
    assert RULES_FILE.is_symlink(), (
        "charts/trending/files/trending.rules.yml must link to monitoring/"
    )
    assert RULES_FILE.resolve() == source.resolve()
    assert source.is_file(), "monitoring/rules/trending.rules.yml (the rules source) is missing"


def test_dashboard_queries_only_exported_metrics_and_recorded_series(
    scenarios: dict[str, list[Obj]],
) -> None:
    dashboard = json.loads(
        one(scenarios["kind"], "ConfigMap", "trending-dashboard")["data"]["trending.json"]
    )
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    recorded = {
        r["record"]
        for g in yaml.safe_load(RULES_FILE.read_text())["groups"]
        for r in g["rules"]
        if "record" in r
    }
    names = {n for e in exprs for n in re.findall(r"\b(trending[_:][a-z0-9_:]+)", e)}
    exported = {
        "trending_requests_total",
        "trending_request_duration_seconds",
        "trending_predictions_total",
        "trending_drift_p_value",
        "trending_drift_is_drift",
        "trending_drift_window_size",
        "trending_model_age_seconds",
        "trending_data_age_seconds",
        "trending_feature_skew",
        "trending_canary_decision_total",
        "trending_retrain_runs_total",
        "trending_drift_distance",
        "trending_retrain_requests_total",
        "trending_new_rows_since_training",
    }
    assert names and names <= exported | recorded


def test_alertmanager_routes_drift_to_the_trigger_with_its_token(
    scenarios: dict[str, list[Obj]],
) -> None:
    config = one(scenarios["kind"], "AlertmanagerConfig", "trending-retrain-routing")["spec"]
    webhook = config["receivers"][0]["webhookConfigs"][0]
    assert (
        webhook["url"] == "http://trending-retrain-trigger.trending.svc.cluster.local:8080/alerts"
    )
    assert webhook["httpConfig"]["authorization"]["credentials"] == {
        "name": "trending-retrain-trigger",
        "key": "TRENDING_TRIGGER_TOKEN",
    }
    assert config["route"]["matchers"] == [{"name": "action", "value": "retrain"}]
    rules = yaml.safe_load(RULES_FILE.read_text())["groups"]
    routed = {
        r["alert"]
        for g in rules
        for r in g["rules"]
        if r.get("labels", {}).get("action") == "retrain"
    }
    assert {"DriftDetected", "ModelStale"} <= routed


def test_notes_describe_what_was_installed(scenarios: dict[str, list[Obj]]) -> None:
    notes = render_files(load_values(CHART / "ci" / "kind-values.yaml"))[
        "trending/templates/NOTES.txt"
    ]
    assert "The canary serves version 2 with 10% of the traffic." in notes
    assert "on the in-chart MinIO (dev only)" in notes
    assert "predictor on GPU nodes" in notes
    minimal = render_files(load_values(CHART / "ci" / "minimal-values.yaml"))[
        "trending/templates/NOTES.txt"
    ]
    assert "canary serves" not in minimal and "monitoring.prometheusOperator=disabled" in minimal
