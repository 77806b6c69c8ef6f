"""Component: register a bundle in the model registry and stage it."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Model

from components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def register(
    bundle: Input[Model],
    decision: Input[Artifact],
    registry_uri: str,
    model_name: str,
    reason: str = "training pipeline",
    actor: str = "kfp:training-pipeline",
) -> int:
    """Upload the bundle as a new immutable version and stage it (production first, then canary).

    Args:
        bundle: The sealed champion bundle.
        decision: The gate's decision JSON; its run id links the version to the run log.
        registry_uri: Registry root (file:///dir or s3://bucket/prefix); S3 credentials come
            from the environment (a Kubernetes Secret), never from a parameter.
        model_name: Registered model name.
        reason: Why this version exists, for the event log.
        actor: Who registers, for the event log.

    Returns:
        The new version number.
    """
    import json
    from pathlib import Path

    from trending.modelling.bundle import sign_if_configured
    from trending.modelling.runs import RunLog
    from trending.registry import Registry, stage_new_version

    registry = Registry.from_uri(registry_uri, model_name)
    runs = RunLog.from_uri(registry_uri, model_name)
    run = runs.get(json.loads(Path(decision.path).read_text())["run_id"])
    # Signed with TRENDING_BUNDLE_SIGNING_KEY(_FILE) when this step holds the key (ADR 0011).
    version = registry.register_version(
        sign_if_configured(Path(bundle.path)),
        actor=actor,
        reason=reason,
        run_record=run.model_dump(mode="json"),
    )
    stage_new_version(registry, version, actor=actor, reason=reason)
    runs.write(run.model_copy(update={"registered_version": version}))
    return version
