"""What a compiled pipeline needs from its environment: Secrets, step environment, accelerator.

The Secret contract lives here, once: the compiled IR mounts these names and keys, and the chart,
``hack/cluster-up.sh``, the kustomize overlays and docs/kubernetes.md create the same ones
(tests/unit/test_secret_contract.py reads all of them). KFP runs a pipeline's pods in its own
namespace (``kubeflow`` for a standalone install, the profile namespace in multi-user mode), so
these Secrets must exist *there*, not only in the release namespace.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlparse

from trending.settings import Settings

# The S3 credentials of every step that reads or writes the data store or the registry.
S3_SECRET = "trending-s3"  # noqa: S105 - the Secret's name, not its value
S3_SECRET_KEYS = {
    "AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY",
}
# The password of the Feast online store (Redis), for the steps that open the feature store.
REDIS_SECRET = "trending-redis"  # noqa: S105 - the Secret's name, not its value
REDIS_SECRET_KEYS = {"REDIS_PASSWORD": "REDIS_PASSWORD"}
# The ed25519 private key that signs bundle manifests (docs/adr/0011-safe-signed-bundles.md):
# mounted into the register step only; loaders get the public key from the chart.
SIGNING_SECRET = "trending-bundle-signing"  # noqa: S105 - the Secret's name, not its value
SIGNING_SECRET_KEYS = {"TRENDING_BUNDLE_SIGNING_KEY": "TRENDING_BUNDLE_SIGNING_KEY"}
# Where GPU work may run: the label and taint of the GPU node pool (see kind-config.yaml).
GPU_NODE_LABEL = ("trending.dev/accelerator", "nvidia-gpu")
GPU_RESOURCE = "nvidia.com/gpu"
Accelerator = Literal["none", "nvidia.com/gpu"]
ACCELERATORS: tuple[str, ...] = ("none", GPU_RESOURCE)
# BERT on a CPU (kind, laptops): few optimizer steps on short texts, so a run ends in minutes.
CPU_BERT_PARAMS = {"max_steps": 30, "max_length": 64, "epochs": 1, "batch_size": 16}


class PipelineSettingsError(ValueError):
    """The settings cannot produce a runnable cluster pipeline."""


@dataclass(frozen=True)
class PipelineConfig:
    """Compile-time choices that are not run parameters.

    Attributes:
        accelerator: ``none`` (BERT on the CPU pool) or ``nvidia.com/gpu`` (GPU pool, CUDA image).
        step_env: Plain (non-secret) environment of the steps that reach S3 or Feast.
        feast_secret: Whether the Feast steps mount the Redis password Secret.
    """

    accelerator: Accelerator = "none"
    step_env: dict[str, str] = field(default_factory=dict)
    feast_secret: bool = False

    @property
    def gpu(self) -> bool:
        """Whether the BERT step asks for a GPU."""
        return self.accelerator == GPU_RESOURCE


def check_accelerator(value: str) -> Accelerator:
    """``value`` as an Accelerator, or a ValueError that lists the choices."""
    if value not in ACCELERATORS:
        raise ValueError(f"accelerator {value!r} is not one of {', '.join(ACCELERATORS)}")
    return value  # type: ignore[return-value]


def pipeline_config(settings: Settings, accelerator: str | None = None) -> PipelineConfig:
    """The compile-time configuration the settings describe (cluster: the chart's ConfigMap).

    Raises:
        PipelineSettingsError: A setting the cluster pipelines need is missing or wrong.
    """
    chosen = check_accelerator(accelerator or settings.accelerator)
    if settings.profile == "local":
        return PipelineConfig(accelerator=chosen)
    if not settings.redis_host:
        raise PipelineSettingsError(
            "the cluster pipelines need REDIS_HOST (the Feast online store): set it in the "
            "chart's settings ConfigMap or the environment"
        )
    bucket = urlparse(settings.resolved_data_uri).netloc
    env = {
        "AWS_DEFAULT_REGION": settings.s3_region,
        "AWS_REGION": settings.s3_region,
        "FEAST_REGISTRY_BUCKET": bucket,
        "REDIS_HOST": settings.redis_host,
        "REDIS_PORT": str(settings.redis_port),
    }
    if settings.s3_endpoint:
        env |= {
            "AWS_ENDPOINT_URL": settings.s3_endpoint,
            "FEAST_S3_ENDPOINT_URL": settings.s3_endpoint,
        }
    return PipelineConfig(accelerator=chosen, step_env=env, feast_secret=True)


def pipeline_defaults(settings: Settings, accelerator: str | None = None) -> dict[str, Any]:
    """Defaults of the pipelines' environment parameters (both pipelines have them all).

    Compiled into the IR, so ``trending pipeline submit training`` and the chart's schedule Job
    need no ``--param``. Local: paths on this machine; cluster: the S3 stores, the image's
    feature repo and scratch Feast state.
    """
    cluster = settings.profile == "cluster"
    defaults: dict[str, Any] = {
        "data_uri": settings.resolved_data_uri,
        "registry_uri": settings.resolved_registry_uri,
        "feature_repo": settings.pipeline_feature_repo
        if cluster
        else str(settings.feature_repo.resolve()),
        "feature_store_yaml": settings.feature_store_yaml,
        # Cluster: each pod gets fresh scratch state; the offline rows live in the data store.
        "feast_dir": "" if cluster else str(settings.feature_store_dir.resolve()),
        "model_name": settings.model_name,
        "seed": settings.seed,
    }
    if cluster and check_accelerator(accelerator or settings.accelerator) == "none":
        # A cluster without GPUs (kind): BERT still trains, on the CPU pool, briefly.
        defaults["bert_params_json"] = json.dumps(CPU_BERT_PARAMS)
    return defaults
