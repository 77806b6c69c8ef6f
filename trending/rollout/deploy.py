"""KServe InferenceServices as plain dicts: render, move canary traffic, promote, roll back.

No kserve import here (docs/adr/0002): the adapter ``serving.canary.kube`` applies these dicts with
the kubernetes client, and the tests check them against the kserve 0.20 SDK models and the
Kubernetes schemas.

Two KServe deployment modes, two canary mechanisms (docs/adr/0009-canary.md):

- ``knative`` (Serverless): one predictor; changing it creates a new revision and
  ``spec.predictor.canaryTrafficPercent`` gives that latest revision its share, the previous
  rolled-out revision keeps the rest. Tag routing exposes ``latest-``/``prev-`` URLs.
- ``standard`` (RawDeployment): ``canaryTrafficPercent`` is silently ignored there — the bug users
  keep hitting — so it is refused; the 0.20 API's ``spec.canary`` list is used instead: a named
  second predictor (its own Deployment ``{isvc}-{name}-predictor``) with ``trafficPercent``.

Predictors are pinned to registry version numbers (``--ref 7``), never aliases, so a pod restart
can never silently change the model a revision or Deployment serves.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

Mode = Literal["knative", "standard"]
Family = Literal["xgboost", "bert"]

MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
TAG_ROUTING_ANNOTATION = "serving.kserve.io/enable-tag-routing"
API_VERSION = "serving.kserve.io/v1beta1"
VERSION_LABEL = "trending.dev/version"
TRACK_LABEL = "trending.dev/track"
_MODE_NAMES: dict[str, Mode] = {
    "knative": "knative",
    "serverless": "knative",
    "standard": "standard",
    "rawdeployment": "standard",
}
# What the annotation says for each mode (the chart in charts/trending uses the same words).
MODE_ANNOTATION_VALUE: dict[Mode, str] = {"knative": "Knative", "standard": "Standard"}


class DeployError(ValueError):
    """A deployment that cannot work as asked; the message says what to change."""


class CanaryFieldIgnoredError(DeployError):
    """A canary field the cluster's KServe mode would silently ignore."""


def normalise_mode(value: str) -> Mode:
    """``Serverless``/``Knative`` -> ``knative``; ``RawDeployment``/``Standard`` -> ``standard``.

    Raises:
        DeployError: Any other mode (ModelMesh has no canary).
    """
    mode = _MODE_NAMES.get(value.strip().lower())
    if mode is None:
        raise DeployError(
            f"unknown KServe deployment mode {value!r}: use Serverless/Knative or "
            "RawDeployment/Standard (ModelMesh has no canary support)"
        )
    return mode


def resolve_mode(
    *,
    annotation: str | None = None,
    configmap_deploy: str | None = None,
    configured: str | None = None,
) -> Mode:
    """The mode KServe will really use for the InferenceService.

    Order: the object's ``serving.kserve.io/deploymentMode`` annotation, then the
    ``defaultDeploymentMode`` in the ``deploy`` key of the ``inferenceservice-config`` ConfigMap,
    then the configured mode (settings / ``--mode``), else ``knative`` (KServe's default).

    Raises:
        DeployError: A mode is unknown, the ConfigMap entry is not JSON, or the configured mode
            contradicts the cluster (the cluster would win silently).
    """
    cluster: Mode | None = None
    if annotation:
        cluster = normalise_mode(annotation)
    elif configmap_deploy:
        try:
            default = json.loads(configmap_deploy).get("defaultDeploymentMode")
        except (ValueError, AttributeError):
            raise DeployError(
                "the 'deploy' entry of ConfigMap inferenceservice-config is not a JSON object; "
                'fix it (e.g. {"defaultDeploymentMode": "Standard"}) or pass --mode'
            ) from None
        cluster = normalise_mode(default) if default else None
    wanted = normalise_mode(configured) if configured else None
    if annotation and wanted and cluster != wanted:
        raise DeployError(
            f"the InferenceService is deployed in {cluster} mode (annotation {MODE_ANNOTATION}="
            f"{annotation!r}) but {wanted} was asked; KServe cannot switch modes in place — "
            "delete and recreate it, or drop --mode"
        )
    return wanted or cluster or "knative"


class DeploySpec(BaseModel):
    """What to deploy: which versions, how much canary traffic, on which nodes."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    name: str = Field(pattern=r"^[a-z]([-a-z0-9]{0,40}[a-z0-9])?$", description="ISVC name.")
    namespace: str = Field("default", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    model_name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    registry_uri: str = Field(pattern=r"^(s3|file)://", description="Registry root.")
    image: str = Field(min_length=1, description="The serving image (pin a tag or digest).")
    family: Family = "xgboost"
    mode: Mode = "standard"
    stable_version: int = Field(ge=1)
    canary_version: int | None = Field(None, ge=1)
    canary_percent: int = Field(0, ge=0, le=100)
    gpu: bool | None = Field(None, description="None: GPU for bert, CPU for xgboost.")
    gpu_count: int = Field(1, ge=1)
    gpu_resource: str = "nvidia.com/gpu"
    gpu_node_selector: dict[str, str] = Field(
        default_factory=lambda: {"nvidia.com/gpu.present": "true"}
    )
    gpu_tolerations: list[dict[str, str]] = Field(
        default_factory=lambda: [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]
    )
    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(3, ge=1)
    service_account: str | None = None
    s3_secret: str | None = Field(None, description="Secret with AWS_* keys for the registry.")
    logger_url: str | None = Field(
        None, description="KServe logger sink (the shadow forwarder) for shadow mode."
    )
    tag_routing: bool = Field(True, description="Knative: latest-/prev- tagged URLs.")

    @model_validator(mode="after")
    def _check(self) -> DeploySpec:
        if self.canary_version is None and self.canary_percent:
            raise DeployError(
                f"canary_percent={self.canary_percent} without a canary version; give one "
                "(trending deploy <version> --canary N deploys <version> as the canary)"
            )
        if self.canary_version is not None and self.canary_version == self.stable_version:
            raise DeployError(
                f"version {self.stable_version} is already the stable version; a canary must be "
                "another version"
            )
        if self.min_replicas > self.max_replicas:
            raise DeployError(
                f"min_replicas={self.min_replicas} exceeds max_replicas={self.max_replicas}"
            )
        if self.mode == "knative" and self.min_replicas == 0 and self.family == "bert":
            raise DeployError("scale-to-zero BERT predictors take minutes to come back; use >= 1")
        return self

    @property
    def uses_gpu(self) -> bool:
        """Whether the predictor asks for GPUs (bert by default; --no-gpu for kind)."""
        return self.family == "bert" if self.gpu is None else self.gpu


def _resources(spec: DeploySpec) -> dict[str, Any]:
    if spec.family == "bert":
        requests = {"cpu": "1", "memory": "2Gi"}
        limits: dict[str, str] = {"cpu": "2", "memory": "4Gi"}
    else:
        requests = {"cpu": "250m", "memory": "512Mi"}
        limits = {"cpu": "1", "memory": "1Gi"}
    if spec.uses_gpu:
        limits[spec.gpu_resource] = str(spec.gpu_count)
    return {"requests": requests, "limits": limits}


def render_predictor(spec: DeploySpec, version: int, *, track: str) -> dict[str, Any]:
    """The predictor (``python -m serving.predictor``) serving one registry version."""
    container: dict[str, Any] = {
        "name": "kserve-container",
        "image": spec.image,
        "args": [
            "python",
            "-m",
            "serving.predictor",
            "--model_name",
            spec.model_name,
            "--registry_uri",
            spec.registry_uri,
            "--ref",
            str(version),
        ],
        "ports": [{"name": "http1", "containerPort": 8080, "protocol": "TCP"}],
        "resources": _resources(spec),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 - bundle cache
    }
    if spec.mode == "standard":  # Knative exposes exactly one port
        container["ports"].append({"name": "grpc", "containerPort": 8081, "protocol": "TCP"})
    if spec.s3_secret:
        container["envFrom"] = [{"secretRef": {"name": spec.s3_secret}}]
    predictor: dict[str, Any] = {
        "minReplicas": spec.min_replicas,
        "maxReplicas": spec.max_replicas,
        "labels": {VERSION_LABEL: str(version), TRACK_LABEL: track},
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    if spec.service_account:
        predictor["serviceAccountName"] = spec.service_account
    if spec.uses_gpu:
        predictor["nodeSelector"] = dict(spec.gpu_node_selector)
        predictor["tolerations"] = [dict(t) for t in spec.gpu_tolerations]
    if spec.logger_url and track == "stable":
        predictor["logger"] = {"mode": "all", "url": spec.logger_url}
    if spec.mode == "standard":
        predictor["name"] = f"v{version}"
    return predictor


def render_inference_service(spec: DeploySpec) -> dict[str, Any]:
    """The whole InferenceService for ``spec``, ready for server-side apply."""
    annotations = {MODE_ANNOTATION: MODE_ANNOTATION_VALUE[spec.mode]}
    isvc_spec: dict[str, Any]
    if spec.mode == "knative":
        if spec.tag_routing:
            annotations[TAG_ROUTING_ANNOTATION] = "true"
        if spec.canary_version is None:
            isvc_spec = {"predictor": render_predictor(spec, spec.stable_version, track="stable")}
        else:
            # The new revision serves the canary; KServe keeps the last rolled-out revision
            # (the stable version) for the remaining traffic.
            predictor = render_predictor(spec, spec.canary_version, track="canary")
            predictor["canaryTrafficPercent"] = spec.canary_percent
            isvc_spec = {"predictor": predictor}
    else:
        isvc_spec = {"predictor": render_predictor(spec, spec.stable_version, track="stable")}
        if spec.canary_version is not None:
            isvc_spec["canary"] = [
                {
                    "trafficPercent": spec.canary_percent,
                    "predictor": render_predictor(spec, spec.canary_version, track="canary"),
                }
            ]
    isvc = {
        "apiVersion": API_VERSION,
        "kind": "InferenceService",
        "metadata": {
            "name": spec.name,
            "namespace": spec.namespace,
            "labels": {
                "app.kubernetes.io/name": "trending",
                "app.kubernetes.io/component": "inference-service",
                "app.kubernetes.io/part-of": "trending-now",
                "app.kubernetes.io/managed-by": "trending-deploy",
            },
            "annotations": annotations,
        },
        "spec": isvc_spec,
    }
    check_canary_fields(isvc, spec.mode)
    return isvc


def check_canary_fields(isvc: dict[str, Any], mode: Mode) -> None:
    """Refuse canary settings that ``mode`` would silently ignore.

    Raises:
        CanaryFieldIgnoredError: ``canaryTrafficPercent`` in Standard/RawDeployment mode, or
            ``spec.canary`` in Knative mode, or canary shares above 100 %.
    """
    spec = isvc.get("spec") or {}
    name = (isvc.get("metadata") or {}).get("name", "?")
    components = ("predictor", "transformer", "explainer")
    if mode == "standard":
        for component in components:
            if (spec.get(component) or {}).get("canaryTrafficPercent") is not None:
                raise CanaryFieldIgnoredError(
                    f"InferenceService {name}: spec.{component}.canaryTrafficPercent is ignored "
                    "by KServe in Standard/RawDeployment mode (all traffic would stay on one "
                    "Deployment and the canary would never be measured); use spec.canary "
                    "(`trending deploy <version> --canary N --mode standard`) or run KServe "
                    "in Serverless/Knative mode"
                )
        total = sum(int(c.get("trafficPercent", 0)) for c in spec.get("canary") or [])
        if total > 100:
            raise CanaryFieldIgnoredError(
                f"InferenceService {name}: spec.canary trafficPercent values sum to {total} > 100"
            )
        for entry in spec.get("canary") or []:
            if not (entry.get("predictor") or {}).get("name"):
                raise CanaryFieldIgnoredError(
                    f"InferenceService {name}: every spec.canary entry needs predictor.name "
                    "(it names the canary Deployment)"
                )
    elif spec.get("canary"):
        raise CanaryFieldIgnoredError(
            f"InferenceService {name}: spec.canary is the Standard-mode canary; in "
            "Serverless/Knative mode use spec.predictor.canaryTrafficPercent "
            "(`trending deploy <version> --canary N --mode knative`)"
        )


def _spec(isvc: dict[str, Any]) -> dict[str, Any]:
    spec = isvc.get("spec")
    if not isinstance(spec, dict) or "predictor" not in spec:
        raise DeployError("the InferenceService has no spec.predictor; deploy it first")
    return spec


def canary_state(isvc: dict[str, Any], mode: Mode) -> tuple[int | None, int]:
    """``(canary version or None, canary percent)`` of a live or rendered InferenceService."""
    spec = _spec(isvc)
    if mode == "standard":
        entries = spec.get("canary") or []
        if not entries:
            return None, 0
        labels = (entries[0].get("predictor") or {}).get("labels") or {}
        version = labels.get(VERSION_LABEL)
        return (int(version) if version else None), int(entries[0].get("trafficPercent", 0))
    predictor = spec["predictor"]
    if predictor.get("canaryTrafficPercent") is None:
        return None, 0
    version = (predictor.get("labels") or {}).get(VERSION_LABEL)
    return (int(version) if version else None), int(predictor["canaryTrafficPercent"])


def with_canary_traffic(isvc: dict[str, Any], mode: Mode, percent: int) -> dict[str, Any]:
    """A copy of ``isvc`` with the canary's share set to ``percent``.

    Raises:
        DeployError: No canary is deployed, or ``percent`` is outside 0..100.
        CanaryFieldIgnoredError: The object carries a field ``mode`` ignores.
    """
    if not 0 <= percent <= 100:
        raise DeployError(f"canary traffic must lie in 0..100, got {percent}")
    check_canary_fields(isvc, mode)
    out = copy.deepcopy(isvc)
    spec = _spec(out)
    if mode == "standard":
        if not spec.get("canary"):
            raise DeployError("no spec.canary entry to move traffic to; deploy a canary first")
        spec["canary"][0]["trafficPercent"] = percent
    else:
        if spec["predictor"].get("canaryTrafficPercent") is None:
            raise DeployError(
                "spec.predictor has no canaryTrafficPercent: no canary revision is rolling out; "
                "deploy a canary first"
            )
        spec["predictor"]["canaryTrafficPercent"] = percent
    return out


def promoted(isvc: dict[str, Any], mode: Mode) -> dict[str, Any]:
    """A copy where the canary serves all traffic and is the stable predictor.

    Standard: the canary predictor (already running, named ``v<n>``) becomes spec.predictor and
    the canary entry goes — KServe keeps its Deployment, so nothing restarts. Knative: the
    ``canaryTrafficPercent`` field goes, so the latest revision takes 100 %.
    """
    check_canary_fields(isvc, mode)
    out = copy.deepcopy(isvc)
    spec = _spec(out)
    if mode == "standard":
        entries = spec.pop("canary", None) or []
        if not entries:
            raise DeployError("no spec.canary entry to promote")
        predictor = entries[0]["predictor"]
        predictor.setdefault("labels", {})[TRACK_LABEL] = "stable"
        spec["predictor"] = predictor
    else:
        if spec["predictor"].pop("canaryTrafficPercent", None) is None:
            raise DeployError("no canary revision is rolling out (no canaryTrafficPercent)")
        spec["predictor"].setdefault("labels", {})[TRACK_LABEL] = "stable"
    return out


def rolled_back(isvc: dict[str, Any], mode: Mode) -> dict[str, Any]:
    """A copy where the stable version gets all traffic again, at once.

    Standard: the canary entry goes (its Deployment is removed). Knative:
    ``canaryTrafficPercent: 0`` pins all traffic to the previous rolled-out revision at once; the
    next ``trending deploy`` replaces the failed revision.
    """
    check_canary_fields(isvc, mode)
    out = copy.deepcopy(isvc)
    spec = _spec(out)
    if mode == "standard":
        spec.pop("canary", None)
    else:
        spec["predictor"]["canaryTrafficPercent"] = 0
    return out


def for_apply(isvc: dict[str, Any]) -> dict[str, Any]:
    """Strip server-owned fields (status, managedFields, uid, ...) before a server-side apply."""
    out = copy.deepcopy(isvc)
    out.pop("status", None)
    meta = out.get("metadata", {})
    for key in ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation"):
        meta.pop(key, None)
    return out


def to_yaml(objects: list[dict[str, Any]]) -> str:
    """Objects as a multi-document YAML stream."""
    return yaml.safe_dump_all(objects, sort_keys=False)
