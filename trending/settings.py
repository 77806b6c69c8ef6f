"""One typed settings object for the whole platform, with ``local`` and ``cluster`` profiles.

Settings come from ``TRENDING_*`` environment variables (and a ``.env`` file when one is given).
Nothing here touches the disk at import; callers build ``Settings()`` in ``main`` and pass it down.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class BundleSigningSettings(BaseSettings):
    """Keys of the bundle manifest signature (docs/adr/0011-safe-signed-bundles.md).

    A class of its own so every bundle loader can read just these ``TRENDING_BUNDLE_*`` fields.
    """

    model_config = SettingsConfigDict(env_prefix="TRENDING_", extra="ignore")

    bundle_signing_key: SecretStr | None = Field(
        None,
        description="ed25519 private key (PEM, or base64 of its 32 bytes) that signs bundle "
        "manifests at registration; only the registering pipeline step holds it (a Secret).",
    )
    bundle_signing_key_file: Path | None = Field(
        None, description="File holding the signing key (a mounted Kubernetes Secret)."
    )
    bundle_public_key: str | None = Field(
        None,
        description="ed25519 public key (PEM, or base64 of its 32 bytes); when set, a bundle "
        "loads only with a manifest signed by the matching private key.",
    )
    bundle_public_key_file: Path | None = Field(None, description="File holding the public key.")


class Settings(BundleSigningSettings):
    """Platform configuration. Backends are chosen here, never by ``if`` scattered in the code."""

    model_config = SettingsConfigDict(env_prefix="TRENDING_", extra="forbid", populate_by_name=True)

    profile: Literal["local", "cluster"] = Field(
        "local", description="local: everything on this machine; cluster: KFP, KServe and S3."
    )
    home: Path = Field(
        Path(".trending"), description="Local state root (data, feature store, runs)."
    )
    registry_uri: str | None = Field(
        None,
        description="Model registry root: file:///abs/dir or s3://bucket/prefix. Default: <home>/registry.",
    )
    data_uri: str | None = Field(
        None,
        description="Dataset snapshot store (snapshots, rejects, Feast offline rows): "
        "file:///abs/dir or s3://bucket/prefix. Default: <home>/data.",
    )
    model_name: str = Field("genre-classifier", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    feature_repo: Path = Field(Path("feature_repo"), description="The Feast repository folder.")
    pipeline_feature_repo: str = Field(
        "/app/feature_repo",
        description="Where the component image carries feature_repo/ (cluster profile pipelines).",
    )
    s3_endpoint: str | None = Field(
        None,
        validation_alias=AliasChoices("TRENDING_S3_ENDPOINT", "AWS_ENDPOINT_URL"),
        description="S3 endpoint URL (the chart's AWS_ENDPOINT_URL); empty: the AWS default.",
    )
    s3_region: str = Field(
        "us-east-1",
        validation_alias=AliasChoices("TRENDING_S3_REGION", "AWS_DEFAULT_REGION"),
        description="Region of the buckets (the chart's AWS_DEFAULT_REGION).",
    )
    redis_host: str | None = Field(
        None,
        validation_alias=AliasChoices("TRENDING_REDIS_HOST", "REDIS_HOST"),
        description="Host of the Feast online store's Redis (cluster profile; the chart's REDIS_HOST).",
    )
    redis_port: int = Field(
        6379,
        ge=1,
        le=65535,
        validation_alias=AliasChoices("TRENDING_REDIS_PORT", "REDIS_PORT"),
        description="Port of that Redis (the chart's REDIS_PORT).",
    )
    accelerator: Literal["none", "nvidia.com/gpu"] = Field(
        "none",
        description="Accelerator of the BERT training step: none (CPU, e.g. kind) or nvidia.com/gpu.",
    )
    cuda_image_suffix: str = Field(
        "-cuda",
        pattern=r"^[A-Za-z0-9_.-]{0,32}$",
        description="Tag suffix of the CUDA build of the component image, used by GPU steps; "
        "empty when the component image itself is the CUDA build (skaffold's gpu profile).",
    )
    kfp_host: str | None = Field(None, description="KFP API endpoint (cluster profile).")
    kfp_namespace: str | None = Field(None, description="KFP namespace (multi-user installs).")
    kfp_token: SecretStr | None = Field(
        None, description="Bearer token for the KFP API; from a Secret, never a CLI flag."
    )
    component_image: str = Field(
        "ghcr.io/trending-now/trending-components:0.1.0",
        description="base_image of every KFP component; set at compile time.",
    )
    seed: int = 7
    tmdb_api_key: SecretStr | None = Field(
        None, description="TMDb v3 API key or v4 read-access token; from a Secret, never a flag."
    )
    tmdb_api_key_file: Path | None = Field(
        None, description="File holding the TMDb key (a mounted Kubernetes Secret)."
    )
    tmdb_base_url: str = Field("https://api.themoviedb.org/3", description="TMDb API root.")
    max_reject_rate: float = Field(
        0.2, ge=0.0, le=1.0, description="An ingest fails when more rows than this are rejected."
    )
    pipeline_params: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="Extra pipeline parameters for local runs, as a JSON object of strings, e.g. "
        '{"bert_params_json": "{\\"epochs\\": 1}"}; checked against the pipeline\'s parameters.',
    )

    @field_validator("pipeline_params", mode="before")
    @classmethod
    def _parse_pipeline_params(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            parsed = json.loads(value or "{}")
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"TRENDING_PIPELINE_PARAMS is not valid JSON ({exc.msg} at character {exc.pos}): "
                'write a JSON object of strings, e.g. {"robustness_cases": "50"}'
            ) from None
        if not isinstance(parsed, dict):
            raise ValueError(
                f"TRENDING_PIPELINE_PARAMS must be a JSON object, got {type(parsed).__name__}"
            )
        return {k: v if isinstance(v, str) else json.dumps(v) for k, v in parsed.items()}

    @model_validator(mode="after")
    def _check_profile(self) -> Settings:
        for name in ("registry_uri", "data_uri"):
            value = getattr(self, name)
            if value is not None and not value.startswith(("file://", "s3://")):
                raise ValueError(
                    f"TRENDING_{name.upper()}={value!r} must start with file:// or s3://"
                )
            if value is not None and value.startswith("s3://") and not urlparse(value).netloc:
                raise ValueError(
                    f"TRENDING_{name.upper()}={value!r} names no bucket: use s3://bucket/prefix"
                )
        if self.profile == "cluster":
            # Pods share nothing local: every store a pipeline step or service touches is remote.
            missing = [
                hint
                for ok, hint in (
                    (
                        (self.registry_uri or "").startswith("s3://"),
                        "TRENDING_REGISTRY_URI=s3://bucket/prefix",
                    ),
                    (
                        (self.data_uri or "").startswith("s3://"),
                        "TRENDING_DATA_URI=s3://bucket/prefix",
                    ),
                )
                if not ok
            ]
            if missing:
                raise ValueError(f"profile 'cluster' needs {', '.join(missing)}")
        return self

    @property
    def resolved_registry_uri(self) -> str:
        """The registry URI, defaulting to a folder under ``home`` in the local profile."""
        return self.registry_uri or (self.home.resolve() / "registry").as_uri()

    @property
    def resolved_data_uri(self) -> str:
        """The snapshot store URI, defaulting to ``<home>/data`` in the local profile."""
        return self.data_uri or self.data_dir.resolve().as_uri()

    @property
    def feature_store_yaml(self) -> str:
        """The Feast environment file in feature_repo/ for this profile."""
        return "feature_store.cluster.yaml" if self.profile == "cluster" else "feature_store.yaml"

    @property
    def data_dir(self) -> Path:
        """Where dataset snapshots and rejects live locally."""
        return self.home / "data"

    @property
    def feature_store_dir(self) -> Path:
        """Where the local Feast registry, online store and offline files live."""
        return self.home / "feast"
