"""Canary changes to the InferenceService the chart rendered: plain dicts in, plain dicts out.

The Helm chart (charts/trending) is the one renderer of the InferenceService (ADR 0004). A canary
rollout changes only three things on it, and this module is where they change:

- the canary section: Standard mode ``spec.canary[0]`` (a copy of the stable predictor, named
  ``v<n>``, pinned to the canary version); Knative mode the predictor itself, pinned to the
  canary version, which makes a new revision;
- the canary's share of traffic: ``spec.canary[0].trafficPercent`` or
  ``spec.predictor.canaryTrafficPercent``;
- promotion (the canary becomes the stable predictor) and rollback (all traffic back at once).

Everything else (image, resources, GPU scheduling, credentials, logger, transformer) stays as the
chart rendered it. The controller (``serving.canary``) and ``trending deploy`` call these functions
on the live object (or, for ``--dry-run``, on ``helm template`` output) and send the difference as
a JSON merge patch (:func:`merge_patch`). No kserve import here (docs/adr/0002); the tests check
every object and patch against the kserve SDK models.

Two KServe deployment modes, two canary mechanisms (docs/adr/0009-canary.md):

- ``knative`` (Serverless): one predictor; changing it creates a new revision and
  ``spec.predictor.canaryTrafficPercent`` gives that latest revision its share, the previous
  rolled-out revision keeps the rest.
- ``standard`` (RawDeployment): ``canaryTrafficPercent`` is silently ignored there, so it is
  refused; the 0.20 API's ``spec.canary`` list is used instead: a named second predictor (its own
  Deployment ``{isvc}-{name}-predictor``) with ``trafficPercent``.

Predictors are pinned to registry version numbers (``--ref 7``), never aliases, so a pod restart
can never silently change the model a revision or Deployment serves.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any, Literal

import yaml

Mode = Literal["knative", "standard"]

MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
API_VERSION = "serving.kserve.io/v1beta1"
TRACK_LABEL = "trending.dev/track"
PREDICTOR_CONTAINER = "kserve-container"
REF_FLAG = "--ref"
ENDPOINT_FLAG = "--endpoint"  # the payload log's ce-endpoint: which track answered
REF_VARIABLE = "TRENDING_REF"
_MODE_NAMES: dict[str, Mode] = {
    "knative": "knative",
    "serverless": "knative",
    "standard": "standard",
    "rawdeployment": "standard",
}


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

    Order: the object's ``serving.kserve.io/deploymentMode`` annotation (the chart always sets
    it), then the ``defaultDeploymentMode`` in the ``deploy`` key of the ``inferenceservice-config``
    ConfigMap, then the configured mode (``--mode``), else ``knative`` (KServe's default).

    Raises:
        DeployError: A mode is unknown, the ConfigMap entry is not JSON, or the configured mode
            contradicts the object's annotation (the cluster would win silently).
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
            "drop --mode, or change inferenceService.deploymentMode in the chart"
        )
    return wanted or cluster or "knative"


def mode_annotation(isvc: dict[str, Any]) -> str | None:
    """The object's ``serving.kserve.io/deploymentMode`` annotation, if any."""
    return ((isvc.get("metadata") or {}).get("annotations") or {}).get(MODE_ANNOTATION)


def name_of(isvc: dict[str, Any]) -> str:
    """``metadata.name`` (``?`` when missing, for messages)."""
    return str((isvc.get("metadata") or {}).get("name", "?"))


# ---------------------------------------------------------------- reading a predictor


def _container(predictor: dict[str, Any]) -> dict[str, Any]:
    containers = predictor.get("containers") or []
    for container in containers:
        if container.get("name") == PREDICTOR_CONTAINER:
            return container
    if len(containers) == 1:
        return containers[0]
    raise DeployError(
        f"the predictor has no container named {PREDICTOR_CONTAINER!r}; is this the "
        "InferenceService charts/trending rendered?"
    )


def _flag_position(args: list[str], flag: str = REF_FLAG) -> tuple[int, bool] | None:
    """Index of ``flag``'s value in ``args`` and whether it is the ``--flag=value`` form."""
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return i + 1, False
        if arg.startswith(f"{flag}="):
            return i, True
    return None


def _set_flag(args: list[str], flag: str, value: str) -> None:
    """Set ``flag``'s value in place where ``args`` carries it."""
    position = _flag_position(args, flag)
    if position is not None:
        index, inline = position
        args[index] = f"{flag}={value}" if inline else value


def pinned_version(predictor: dict[str, Any]) -> int | None:
    """The registry version a predictor serves (its ``--ref`` flag or ``TRENDING_REF``).

    None when the predictor names an alias (unpinned) or no ref at all.
    """
    container = _container(predictor)
    args = [str(a) for a in container.get("args") or []]
    value: str | None = None
    position = _flag_position(args)
    if position is not None:
        index, inline = position
        value = args[index].split("=", 1)[1] if inline else args[index]
    else:
        for item in container.get("env") or []:
            if item.get("name") == REF_VARIABLE:
                value = item.get("value")
    return int(value) if value is not None and str(value).isdigit() else None


def pin_version(predictor: dict[str, Any], version: int, *, track: str) -> dict[str, Any]:
    """A copy of ``predictor`` serving registry version ``version``, labelled with ``track``.

    Raises:
        DeployError: The predictor carries no ``--ref`` flag (nor ``TRENDING_REF``) to pin.
    """
    out = copy.deepcopy(predictor)
    container = _container(out)
    args = [str(a) for a in container.get("args") or []]
    position = _flag_position(args)
    env = [item for item in container.get("env") or [] if item.get("name") == REF_VARIABLE]
    if position is None and not env:
        raise DeployError(
            f"the predictor's {PREDICTOR_CONTAINER} container has no {REF_FLAG} flag (nor "
            f"{REF_VARIABLE}); the chart must pin the registry version it serves "
            "(inferenceService.predictor.version -> --ref N)"
        )
    _set_flag(args, REF_FLAG, str(version))
    _set_flag(args, ENDPOINT_FLAG, track)
    container["args"] = args
    for item in env:
        item["value"] = str(version)
    out.setdefault("labels", {})[TRACK_LABEL] = track
    return out


@dataclass(frozen=True)
class CanaryState:
    """What an InferenceService serves: the stable version and the canary with its share.

    ``stable_version`` is None in Knative mode while a canary rolls out (the previous revision is
    in the status, not the spec) and whenever the predictor is not pinned.
    """

    stable_version: int | None
    canary_version: int | None
    canary_percent: int


def _spec(isvc: dict[str, Any]) -> dict[str, Any]:
    spec = isvc.get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("predictor"), dict):
        raise DeployError(
            f"InferenceService {name_of(isvc)} has no spec.predictor; install the chart first"
        )
    return spec


def canary_state(isvc: dict[str, Any], mode: Mode) -> CanaryState:
    """The stable and canary versions and the canary's share, read from the spec.

    A Knative predictor with ``canaryTrafficPercent`` absent or 0 has no canary: its latest
    revision either has all traffic (promoted) or none (rolled back).
    """
    spec = _spec(isvc)
    predictor = spec["predictor"]
    if mode == "standard":
        entries = spec.get("canary") or []
        stable = pinned_version(predictor)
        if not entries:
            return CanaryState(stable, None, 0)
        canary = pinned_version(entries[0].get("predictor") or {})
        return CanaryState(stable, canary, int(entries[0].get("trafficPercent") or 0))
    percent = int(predictor.get("canaryTrafficPercent") or 0)
    if percent == 0:
        return CanaryState(pinned_version(predictor), None, 0)
    return CanaryState(None, pinned_version(predictor), percent)


# ---------------------------------------------------------------- canary changes


def check_canary_fields(isvc: dict[str, Any], mode: Mode) -> None:
    """Refuse canary settings that ``mode`` would silently ignore.

    Raises:
        CanaryFieldIgnoredError: ``canaryTrafficPercent`` in Standard/RawDeployment mode, or
            ``spec.canary`` in Knative mode, or canary shares above 100 %.
    """
    spec = isvc.get("spec") or {}
    name = name_of(isvc)
    components = ("predictor", "transformer", "explainer")
    if mode == "standard":
        for component in components:
            if (spec.get(component) or {}).get("canaryTrafficPercent") is not None:
                raise CanaryFieldIgnoredError(
                    f"InferenceService {name}: spec.{component}.canaryTrafficPercent is ignored "
                    "by KServe in Standard/RawDeployment mode (all traffic would stay on one "
                    "Deployment and the canary would never be measured); use spec.canary "
                    "(`trending deploy <version> --canary N`) or run KServe in "
                    "Serverless/Knative mode"
                )
        total = sum(int(c.get("trafficPercent") or 0) for c in spec.get("canary") or [])
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
            "Serverless/Knative mode use spec.predictor.canaryTrafficPercent"
        )


def _check_percent(percent: int) -> None:
    if not 0 <= percent <= 100:
        raise DeployError(f"canary traffic must lie in 0..100, got {percent}")


def canary_predictor_name(version: int) -> str:
    """``spec.canary[].predictor.name`` of a version (names its Deployment ``{isvc}-v<n>-predictor``)."""
    return f"v{version}"


def with_canary(isvc: dict[str, Any], mode: Mode, version: int, percent: int) -> dict[str, Any]:
    """A copy of ``isvc`` rolling out registry version ``version`` as the canary at ``percent``.

    Standard: ``spec.canary`` becomes one entry, a copy of the stable predictor pinned to
    ``version`` and named ``v<version>``. Knative: the predictor is pinned to ``version`` (a new
    revision) with ``canaryTrafficPercent``; KServe keeps the last rolled-out revision for the rest.

    Raises:
        DeployError: ``version`` is what the stable predictor serves, or ``percent`` is outside
            0..100, or the predictor cannot be pinned.
        CanaryFieldIgnoredError: The object carries a field ``mode`` ignores.
    """
    _check_percent(percent)
    check_canary_fields(isvc, mode)
    out = copy.deepcopy(isvc)
    spec = _spec(out)
    state = canary_state(isvc, mode)
    if state.stable_version == version:
        raise DeployError(
            f"version {version} is what the stable predictor of {name_of(isvc)} serves; a canary "
            "must be another version"
        )
    if mode == "standard":
        predictor = pin_version(spec["predictor"], version, track="canary")
        predictor["name"] = canary_predictor_name(version)
        spec["canary"] = [{"trafficPercent": percent, "predictor": predictor}]
    else:
        predictor = pin_version(spec["predictor"], version, track="canary")
        predictor["canaryTrafficPercent"] = percent
        spec["predictor"] = predictor
    check_canary_fields(out, mode)
    return out


def with_canary_traffic(isvc: dict[str, Any], mode: Mode, percent: int) -> dict[str, Any]:
    """A copy of ``isvc`` with the canary's share set to ``percent``.

    Raises:
        DeployError: No canary is deployed, or ``percent`` is outside 0..100.
        CanaryFieldIgnoredError: The object carries a field ``mode`` ignores.
    """
    _check_percent(percent)
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

    Raises:
        DeployError: No canary to promote.
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
    next canary replaces the failed revision.
    """
    check_canary_fields(isvc, mode)
    out = copy.deepcopy(isvc)
    spec = _spec(out)
    if mode == "standard":
        spec.pop("canary", None)
    else:
        spec["predictor"]["canaryTrafficPercent"] = 0
    return out


# ---------------------------------------------------------------- patches and manifests


def merge_patch(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that turns ``before`` into ``after``.

    Maps are diffed key by key (a removed key becomes ``null``); lists and scalars are replaced
    whole, as RFC 7386 does. Equal inputs give ``{}``.
    """
    patch: dict[str, Any] = {}
    for key in before.keys() - after.keys():
        patch[key] = None
    for key, value in after.items():
        old = before.get(key)
        if key in before and old == value:
            continue
        if isinstance(old, dict) and isinstance(value, dict):
            patch[key] = merge_patch(old, value)
        else:
            patch[key] = copy.deepcopy(value)
    return patch


def inference_service_from_manifest(text: str, name: str | None = None) -> dict[str, Any]:
    """The InferenceService in a rendered manifest (``helm template … > isvc.yaml``).

    Args:
        text: One or more YAML documents.
        name: Which InferenceService when there are several (default: the only one).

    Raises:
        DeployError: Not YAML, no InferenceService, or none/several matching ``name``.
    """
    try:
        documents = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    except yaml.YAMLError as exc:
        raise DeployError(f"the manifest is not valid YAML: {exc}") from None
    found = [
        d
        for d in documents
        if d.get("kind") == "InferenceService" and d.get("apiVersion") == API_VERSION
    ]
    if name is not None:
        found = [d for d in found if name_of(d) == name]
    if len(found) != 1:
        names = ", ".join(name_of(d) for d in documents if d.get("kind") == "InferenceService")
        raise DeployError(
            f"the manifest holds {len(found)} InferenceService(s) "
            f"{f'named {name!r} ' if name else ''}(found: {names or 'none'}); render it with "
            "`helm template <release> charts/trending -s templates/inferenceservice.yaml` "
            "or pass --name"
        )
    return found[0]


def to_yaml(objects: list[dict[str, Any]]) -> str:
    """Objects as a multi-document YAML stream."""
    return yaml.safe_dump_all(objects, sort_keys=False)
