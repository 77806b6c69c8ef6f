"""Component: register a bundle in the model registry and stage it."""

from kfp import dsl
from kfp.dsl import Input, Model

from components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def register(
    bundle: Input[Model],
    registry_uri: str,
    model_name: str,
    run_id: str = "",
    reason: str = "training pipeline",
    actor: str = "kfp:training-pipeline",
) -> int:
    """Upload the bundle as a new immutable version and stage it (production first, then canary).

    Args:
        bundle: The sealed champion bundle.
        registry_uri: Registry root (file:///dir or s3://bucket/prefix); S3 credentials come
            from the environment (a Kubernetes Secret), never from a parameter.
        model_name: Registered model name.
        run_id: The training run's id in the run log, linked from the version.
        reason: Why this version exists, for the event log.
        actor: Who registers, for the event log.

    Returns:
        The new version number.
    """
    from pathlib import Path

    from trending.registry import Registry, stage_new_version
    from trending.runs import RunLog

    registry = Registry.from_uri(registry_uri, model_name)
    runs = RunLog.from_uri(registry_uri, model_name)
    run = runs.get(run_id) if run_id else None
    version = registry.register_version(
        Path(bundle.path), actor=actor, reason=reason, run_record=run.model_dump(mode="json") if run else None
    )
    stage_new_version(registry, version, actor=actor, reason=reason)
    if run is not None:
        runs.write(run.model_copy(update={"registered_version": version}))
    return version
