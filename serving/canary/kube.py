"""The Kubernetes side: read and server-side apply InferenceServices, detect the KServe mode."""

from __future__ import annotations

from typing import Any

from trending.rollout.deploy import API_VERSION, MODE_ANNOTATION, Mode, resolve_mode

FIELD_MANAGER = "trending-canary"


class KubeInferenceServiceApi:
    """InferenceServices through the dynamic client (server-side apply as ``trending-canary``)."""

    def __init__(self, api_client: Any | None = None) -> None:
        """Use ``api_client``, or load in-cluster config, falling back to ~/.kube/config."""
        from kubernetes import client, config
        from kubernetes.dynamic import DynamicClient

        if api_client is None:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
            api_client = client.ApiClient()
        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.dynamic = DynamicClient(api_client)
        self.resource = self.dynamic.resources.get(api_version=API_VERSION, kind="InferenceService")

    def get(self, name: str, namespace: str) -> dict[str, Any]:
        """The live InferenceService as a dict."""
        return self.resource.get(name=name, namespace=namespace).to_dict()

    def exists(self, name: str, namespace: str) -> bool:
        """Whether the InferenceService exists."""
        from kubernetes.dynamic.exceptions import NotFoundError

        try:
            self.get(name, namespace)
        except NotFoundError:
            return False
        return True

    def apply(self, body: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply (``application/apply-patch+yaml``), forcing our ownership."""
        meta = body["metadata"]
        kwargs: dict[str, Any] = {"field_manager": FIELD_MANAGER, "force_conflicts": True}
        if dry_run:
            kwargs["dry_run"] = "All"
        result = self.dynamic.server_side_apply(
            self.resource, body=body, name=meta["name"], namespace=meta.get("namespace"), **kwargs
        )
        return result.to_dict()

    def detect_mode(self, name: str, namespace: str, configured: str | None = None) -> Mode:
        """KServe's mode: the object's annotation, else the cluster default, else ``configured``."""
        from kubernetes.client.exceptions import ApiException
        from kubernetes.dynamic.exceptions import NotFoundError

        annotation = None
        try:
            live = self.get(name, namespace)
            annotation = (live.get("metadata", {}).get("annotations") or {}).get(MODE_ANNOTATION)
        except NotFoundError:
            pass
        deploy = None
        try:
            cm = self.core.read_namespaced_config_map("inferenceservice-config", "kserve")
            deploy = (cm.data or {}).get("deploy")
        except ApiException:
            pass
        return resolve_mode(annotation=annotation, configmap_deploy=deploy, configured=configured)
