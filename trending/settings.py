"""One typed settings object for the whole platform, with ``local`` and ``cluster`` profiles.

Settings come from ``TRENDING_*`` environment variables (and a ``.env`` file when one is given).
Nothing here touches the disk at import; callers build ``Settings()`` in ``main`` and pass it down.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Platform configuration. Backends are chosen here, never by ``if`` scattered in the code."""

    model_config = SettingsConfigDict(env_prefix="TRENDING_", extra="forbid")

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
    model_name: str = Field("genre-classifier", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    feature_repo: Path = Field(Path("feature_repo"), description="The Feast repository folder.")
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
        if self.registry_uri is not None and not self.registry_uri.startswith(("file://", "s3://")):
            raise ValueError(
                f"TRENDING_REGISTRY_URI={self.registry_uri!r} must start with file:// or s3://"
            )
        if self.profile == "cluster":
            if not (self.registry_uri or "").startswith("s3://"):
                raise ValueError("profile 'cluster' needs TRENDING_REGISTRY_URI=s3://bucket/prefix")
            if not self.kfp_host:
                raise ValueError("profile 'cluster' needs TRENDING_KFP_HOST (the KFP API endpoint)")
        return self

    @property
    def resolved_registry_uri(self) -> str:
        """The registry URI, defaulting to a folder under ``home`` in the local profile."""
        return self.registry_uri or (self.home.resolve() / "registry").as_uri()

    @property
    def data_dir(self) -> Path:
        """Where dataset snapshots and rejects live locally."""
        return self.home / "data"

    @property
    def feature_store_dir(self) -> Path:
        """Where the local Feast registry, online store and offline files live."""
        return self.home / "feast"
