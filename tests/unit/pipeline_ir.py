"""The pipelines compiled for a cluster, as KFP reads them: settings and package documents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from yaml_documents import documents

from trending.settings import Settings

IMAGE = "registry.example/trending-components:1.2.3"
CLUSTER = {
    "profile": "cluster",
    "registry_uri": "s3://trending/registry",
    "data_uri": "s3://trending/data",
    "redis_host": "trending-redis.trending.svc.cluster.local",
    "s3_endpoint": "http://trending-minio.trending.svc.cluster.local:9000",
    "component_image": IMAGE,
}


def cluster_settings(**changes: Any) -> Settings:
    """Cluster-profile settings, with ``changes`` on top."""
    return Settings(**{**CLUSTER, **changes})


def read_package(path: Path) -> list[dict[str, Any]]:
    """A compiled package: the pipeline spec, then the Kubernetes platform spec when it has one."""
    return documents(Path(path).read_text())
