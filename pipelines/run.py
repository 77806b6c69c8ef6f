"""Compile pipelines to KFP IR YAML and run them locally through kfp.local."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from components.image import COMPONENT_IMAGE
from pipelines.training import training_pipeline

PIPELINES: dict[str, Callable[..., Any]] = {"training": training_pipeline}


def pipeline_named(name: str) -> Callable[..., Any]:
    """The pipeline function called ``name``."""
    try:
        return PIPELINES[name]
    except KeyError:
        raise ValueError(f"unknown pipeline {name!r}: choose one of {sorted(PIPELINES)}") from None


def compile_pipeline(name: str, output_dir: Path, image: str) -> Path:
    """Compile one pipeline to ``<output_dir>/<name>.yaml`` with every component on ``image``."""
    from kfp import compiler

    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / f"{name}.yaml"
    compiler.Compiler().compile(pipeline_named(name), str(path))
    spec = yaml.safe_load(path.read_text())
    for executor in spec["deploymentSpec"]["executors"].values():
        if executor.get("container", {}).get("image") == COMPONENT_IMAGE:
            executor["container"]["image"] = image
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def compile_all(output_dir: Path, image: str) -> list[Path]:
    """Compile every pipeline."""
    return [compile_pipeline(name, output_dir, image) for name in PIPELINES]


def run_local(name: str, arguments: dict[str, Any], pipeline_root: Path) -> Any:
    """Run a pipeline with kfp.local's SubprocessRunner in this Python environment.

    Returns the pipeline's output (for the training pipeline: the registered version).
    """
    from kfp import local

    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(pipeline_root),
        raise_on_error=True,
    )
    with warnings.catch_warnings():
        # The local runner warns for images without "python" in their name; ours is Python.
        warnings.filterwarnings("ignore", message=".*non-Python base image.*")
        task = pipeline_named(name)(**arguments)
    return task.output
