"""Compile pipelines to KFP IR YAML and run them locally through kfp.local."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from components.image import COMPONENT_IMAGE
from pipelines.cluster import PipelineConfig, pipeline_config, pipeline_defaults
from pipelines.continuous_training import (
    build_continuous_training_pipeline,
    continuous_training_pipeline,
)
from pipelines.training import build_training_pipeline, training_pipeline
from trending.settings import Settings

PIPELINES: dict[str, Callable[..., Any]] = {
    "training": training_pipeline,
    "continuous-training": continuous_training_pipeline,
}
BUILDERS: dict[str, Callable[[PipelineConfig], Any]] = {
    "training": build_training_pipeline,
    "continuous-training": build_continuous_training_pipeline,
}
# The display name of the step that may run on a GPU (and then on the CUDA image).
GPU_STEP = "train-bert"


def pipeline_named(name: str) -> Callable[..., Any]:
    """The pipeline function called ``name`` (local configuration)."""
    try:
        return PIPELINES[name]
    except KeyError:
        raise ValueError(f"unknown pipeline {name!r}: choose one of {sorted(PIPELINES)}") from None


def cuda_variant(image: str, suffix: str) -> str:
    """The CUDA build of an image: its tag with ``suffix`` (``repo:1.2`` -> ``repo:1.2-cuda``).

    An empty suffix means the image itself is the CUDA build. A digest pins one build, so a
    pinned image cannot be varied by name: it is refused unless the suffix is empty.
    """
    if not suffix:
        return image
    if "@" in image:
        raise ValueError(
            f"component image {image!r} is pinned by digest: a GPU compile needs a tag "
            "(the CUDA build's tag is the CPU tag plus the suffix)"
        )
    name, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:
        return f"{image}:latest{suffix}"
    return f"{name}:{tag}{suffix}"


def typed_arguments(name: str, values: dict[str, str]) -> dict[str, Any]:
    """Turn ``key=value`` strings into the pipeline's parameter types; refuse unknown keys."""
    return typed_parameters(pipeline_named(name), values, label=name)


def typed_parameters(
    pipeline: Any, values: dict[str, str], origin: str = "", *, label: str | None = None
) -> dict[str, Any]:
    """Turn strings into ``pipeline``'s parameter types; refuse unknown keys and bad values.

    ``origin`` (e.g. the setting's name) prefixes the error; ``label`` names the pipeline in it.
    """
    try:
        return _typed(pipeline, values, label or pipeline.name)
    except ValueError as exc:
        if origin:
            raise ValueError(f"{origin}: {exc}") from None
        raise


def _typed(pipeline: Any, values: dict[str, str], name: str) -> dict[str, Any]:
    inputs = pipeline.component_spec.inputs or {}
    casts: dict[str, Callable[[str], Any]] = {
        "Integer": int,
        "Float": float,
        "Boolean": lambda v: {"true": True, "false": False}[v.lower()],
        "String": str,
    }
    typed = {}
    for key, value in values.items():
        if key not in inputs:
            raise ValueError(f"pipeline {name!r} has no parameter {key!r}; it has {sorted(inputs)}")
        kind = inputs[key].type
        try:
            typed[key] = casts.get(kind, str)(value)
        except (ValueError, KeyError):
            raise ValueError(f"parameter {key}={value!r} is not a valid {kind}") from None
    return typed


def compile_pipeline(
    name: str,
    output_dir: Path,
    settings: Settings,
    *,
    accelerator: str | None = None,
) -> Path:
    """Compile one pipeline to ``<output_dir>/<name>.yaml`` for the settings' environment.

    Every environment parameter gets its default from the settings (data store, registry,
    feature repo and Feast environment, model name, seed, TRENDING_PIPELINE_PARAMS), so a run
    needs no argument. Every component runs on ``settings.component_image``; with
    ``accelerator=nvidia.com/gpu`` the BERT step asks for a GPU and runs on the CUDA build.

    Raises:
        ValueError: An unknown pipeline, or settings that cannot make a runnable pipeline
            (checked here, before any step runs).
    """
    from kfp import compiler

    pipeline_named(name)
    config = pipeline_config(settings, accelerator)
    cuda_image = (
        cuda_variant(settings.component_image, settings.cuda_image_suffix) if config.gpu else ""
    )
    pipeline = BUILDERS[name](config)
    declared = pipeline.component_spec.inputs or {}
    defaults = {k: v for k, v in pipeline_defaults(settings, accelerator).items() if k in declared}
    defaults |= typed_parameters(pipeline, settings.pipeline_params, "TRENDING_PIPELINE_PARAMS")
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / f"{name}.yaml"
    compiler.Compiler().compile(pipeline, str(path), pipeline_parameters=defaults)
    # Document 1 is the pipeline spec; document 2 (when present) the Kubernetes platform spec.
    spec, *platform = yaml.safe_load_all(path.read_text())
    gpu_executors = _executors_named(spec, GPU_STEP) if config.gpu else set()
    for label, executor in spec["deploymentSpec"]["executors"].items():
        container = executor.get("container", {})
        if container.get("image") == COMPONENT_IMAGE:
            container["image"] = cuda_image if label in gpu_executors else settings.component_image
    path.write_text(yaml.safe_dump_all([spec, *platform], sort_keys=False))
    return path


def _executors_named(spec: dict[str, Any], display_name: str) -> set[str]:
    """Executor labels of the tasks called ``display_name``, in any DAG of the spec."""
    dags = [spec["root"], *spec.get("components", {}).values()]
    labels = set()
    for dag in dags:
        for task in dag.get("dag", {}).get("tasks", {}).values():
            if task["taskInfo"]["name"] == display_name:
                labels.add(spec["components"][task["componentRef"]["name"]]["executorLabel"])
    return labels


def compile_all(
    output_dir: Path, settings: Settings, *, accelerator: str | None = None
) -> list[Path]:
    """Compile every pipeline."""
    return [
        compile_pipeline(name, output_dir, settings, accelerator=accelerator) for name in PIPELINES
    ]


def required_without_default(package: Path) -> list[str]:
    """The root parameters of a compiled pipeline that a run would have to supply."""
    spec = next(yaml.safe_load_all(package.read_text()))
    parameters = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    return sorted(
        k for k, p in parameters.items() if "defaultValue" not in p and not p.get("isOptional")
    )


@contextmanager
def output_to(log_path: Path | None) -> Iterator[None]:
    """Send this process's and its children's stdout/stderr to ``log_path`` (None: leave as is).

    kfp.local prints every executor's input and output; the log keeps them, the terminal stays readable.
    """
    if log_path is None:
        yield
        return
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


class PipelineFailedError(RuntimeError):
    """A local pipeline run failed; the message names the log with the details."""


def run_local(
    name: str, arguments: dict[str, Any], pipeline_root: Path, log_path: Path | None = None
) -> Any:
    """Run a pipeline with kfp.local's SubprocessRunner in this Python environment.

    Returns the pipeline's output (for the training pipeline: the registered version).
    """
    from kfp import local

    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(pipeline_root),
        raise_on_error=True,
    )
    with output_to(log_path), warnings.catch_warnings():
        # The local runner warns for images without "python" in their name; ours is Python.
        warnings.filterwarnings("ignore", message=".*non-Python base image.*")
        try:
            task = pipeline_named(name)(**arguments)
        except RuntimeError as exc:
            where = f"; see {log_path}" if log_path else ""
            raise PipelineFailedError(f"pipeline {name!r} failed: {exc}{where}") from exc
    return task.output


class KfpUnreachableError(RuntimeError):
    """The KFP API did not answer."""


def kfp_client(host: str, *, token: str | None = None, namespace: str | None = None) -> Any:
    """A ``kfp.Client`` for ``host``, after checking within seconds that the API answers."""
    import httpx
    from kfp import Client

    try:
        httpx.get(f"{host.rstrip('/')}/apis/v2beta1/healthz", timeout=5.0, headers=_auth(token))
    except httpx.HTTPError as exc:
        raise KfpUnreachableError(
            f"KFP API at {host} is unreachable ({type(exc).__name__}): check --host / "
            "TRENDING_KFP_HOST, the port-forward or ingress, and the network"
        ) from None
    return Client(host=host, existing_token=token, namespace=namespace)


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def submit(
    client: Any,
    name: str,
    package: Path,
    arguments: dict[str, Any],
    *,
    experiment: str = "trending",
) -> str:
    """Start one run of a compiled pipeline; return the run id."""
    run = client.create_run_from_pipeline_package(
        str(package), arguments=arguments, experiment_name=experiment, run_name=f"{name}-run"
    )
    return str(run.run_id)


class PipelineNotUploadedError(ValueError):
    """KFP holds no version of the pipeline to run."""


def submit_uploaded(
    client: Any, name: str, arguments: dict[str, Any], *, experiment: str = "trending"
) -> str:
    """Start one run of the newest uploaded version of pipeline ``name``; return the run id.

    The chart's Job uploads the pipelines compiled in the cluster with the release's settings,
    so every parameter has its default there and ``arguments`` may be empty.

    Raises:
        PipelineNotUploadedError: KFP has no such pipeline, or no version of it.
    """
    pipeline_id = client.get_pipeline_id(name)
    versions = (
        client.list_pipeline_versions(pipeline_id, page_size=1, sort_by="created_at desc")
        if pipeline_id
        else None
    )
    newest = (getattr(versions, "pipeline_versions", None) or [None])[0]
    if newest is None:
        raise PipelineNotUploadedError(
            f"KFP has no uploaded pipeline {name!r}: install the chart (its Job uploads the "
            "pipelines), run `trending pipeline upload --version <v>`, or submit with --compile"
        )
    experiment_id = client.create_experiment(name=experiment).experiment_id
    run = client.run_pipeline(
        experiment_id=experiment_id,
        job_name=f"{name}-run",
        params=arguments,
        pipeline_id=pipeline_id,
        version_id=newest.pipeline_version_id,
    )
    return str(run.run_id)


def upload(client: Any, name: str, package: Path, version: str) -> str:
    """Upload a compiled pipeline (first time) or a new version of it; return the version's id."""
    pipeline_id = client.get_pipeline_id(name)
    if pipeline_id is None:
        pipeline = client.upload_pipeline(str(package), pipeline_name=name)
        pipeline_id = pipeline.pipeline_id
    uploaded = client.upload_pipeline_version(
        str(package), pipeline_version_name=f"{name}-{version}", pipeline_id=pipeline_id
    )
    return str(uploaded.pipeline_version_id)


def schedule(
    client: Any,
    name: str,
    package: Path,
    arguments: dict[str, Any],
    *,
    cron: str,
    experiment: str = "trending",
) -> str:
    """Create a recurring run (KFP cron: six fields, seconds first); return its id."""
    fields = cron.split()
    if len(fields) != 6:
        raise ValueError(
            f"cron {cron!r} has {len(fields)} fields; KFP wants 6 (seconds first), e.g. '0 0 3 * * *'"
        )
    experiment_id = client.create_experiment(name=experiment).experiment_id
    job = client.create_recurring_run(
        experiment_id=experiment_id,
        job_name=f"{name}-recurring",
        cron_expression=cron,
        pipeline_package_path=str(package),
        params=arguments,
        max_concurrency=1,
    )
    return str(job.recurring_run_id)
