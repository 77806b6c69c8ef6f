"""The Kubernetes side: read and merge-patch one InferenceService, detect the KServe mode.

Two calls on ``inferenceservices/<name>``, the only verbs the chart's Role grants: ``get`` and
``patch`` (a JSON merge patch carrying ``metadata.resourceVersion``, so a concurrent change makes
the API server answer 409 instead of being overwritten). No discovery, no list or watch: the
controller polls, so a restart needs nothing but these two calls to find where it stopped.
"""

from __future__ import annotations

from typing import Any

from trending.rollout.deploy import DeployError, Mode, mode_annotation, resolve_mode

FIELD_MANAGER = "trending-canary"
GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"


class KubeUnavailableError(RuntimeError):
    """The Kubernetes API cannot be used (no config, unreachable, forbidden); retry later."""


class InferenceServiceNotFoundError(DeployError):
    """The InferenceService does not exist (yet)."""


class ConflictError(RuntimeError):
    """The object changed between our read and our patch (HTTP 409)."""


def _api_client() -> Any:
    """In-cluster config (the pod's ServiceAccount), else ~/.kube/config."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:
            config.load_kube_config()
        except (config.ConfigException, OSError) as exc:
            raise KubeUnavailableError(
                "no Kubernetes API configured: not running in a pod with a ServiceAccount token "
                f"and no usable kubeconfig ({exc})"
            ) from None
    return client.ApiClient()


class KubeInferenceServiceApi:
    """``get`` and ``patch`` of InferenceServices through the kubernetes client."""

    def __init__(self, api_client: Any | None = None, *, request_timeout: float = 10.0) -> None:
        """Use ``api_client``, or the in-cluster config, else ~/.kube/config.

        Raises:
            KubeUnavailableError: No configuration could be loaded.
        """
        from kubernetes import client

        self.api_client = api_client if api_client is not None else _api_client()
        self.custom = client.CustomObjectsApi(self.api_client)
        self.core = client.CoreV1Api(self.api_client)
        self.timeout = request_timeout

    def _call(self, what: str, name: str, namespace: str, fn: Any, *args: Any, **kw: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return fn(*args, _request_timeout=self.timeout, **kw)
        except ApiException as exc:
            if exc.status == 404:
                raise InferenceServiceNotFoundError(
                    f"InferenceService {name} not found in namespace {namespace}; install the "
                    "chart with inferenceService.enabled=true (or check --inference_service)"
                ) from None
            if exc.status == 409:
                raise ConflictError(f"InferenceService {name} changed during the {what}") from None
            if exc.status in (401, 403):
                raise KubeUnavailableError(
                    f"{what} of inferenceservices/{name} in {namespace} refused ({exc.status} "
                    f"{exc.reason}); the controller's Role must allow get and patch on it"
                ) from None
            raise KubeUnavailableError(
                f"{what} of InferenceService {name} failed: {exc.status} {exc.reason}"
            ) from None
        except (HTTPError, OSError) as exc:
            host = self.api_client.configuration.host
            raise KubeUnavailableError(
                f"cannot reach the Kubernetes API at {host}: {exc}"
            ) from None

    def get(self, name: str, namespace: str) -> dict[str, Any]:
        """The live InferenceService as a dict.

        Raises:
            InferenceServiceNotFoundError: It does not exist.
            KubeUnavailableError: The API cannot be reached or refused.
        """
        return self._call(
            "get",
            name,
            namespace,
            self.custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
        )

    def patch(self, name: str, namespace: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Apply a JSON merge patch (``application/merge-patch+json``) as ``trending-canary``.

        Raises:
            ConflictError: ``patch`` carries a ``metadata.resourceVersion`` that is stale.
            InferenceServiceNotFoundError: It does not exist.
            KubeUnavailableError: The API cannot be reached or refused.
        """
        return self._call(
            "patch",
            name,
            namespace,
            self.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            patch,
            field_manager=FIELD_MANAGER,
        )

    def detect_mode(self, isvc: dict[str, Any], configured: str | None = None) -> Mode:
        """KServe's mode: the object's annotation, else the cluster default, else ``configured``.

        The cluster default (ConfigMap ``kserve/inferenceservice-config``) is read only when the
        object has no annotation and no mode is configured; the chart always sets the annotation,
        and its Role grants nothing in the ``kserve`` namespace.
        """
        from kubernetes.client.exceptions import ApiException

        annotation = mode_annotation(isvc)
        deploy = None
        if annotation is None and configured is None:
            try:
                cm = self.core.read_namespaced_config_map(
                    "inferenceservice-config", "kserve", _request_timeout=self.timeout
                )
                deploy = (cm.data or {}).get("deploy")
            except ApiException:
                pass
        return resolve_mode(annotation=annotation, configmap_deploy=deploy, configured=configured)
