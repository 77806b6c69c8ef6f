"""Unit-test set-up: kfp's resource-call check without its stack walk (pipelines build in < 1 s)."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

_original_check: Callable[[Any], None] | None = None


def _ensure_container_spec_exists(self: Any) -> None:
    """kfp's ``PipelineTask._ensure_container_spec_exists``: same check, same message.

    kfp 2.x names the caller with ``inspect.stack()[1][3]``, which reads the source of every
    frame on the stack; each frozen importlib frame costs a scan of all of ``sys.modules``.
    ``pipelines/`` builds its pipelines at import time, and every ``set_cpu_request`` /
    ``set_memory_request`` / ``set_env_variable`` runs the check, so importing ``pipelines.run``
    from a test module with a few thousand modules loaded took 10-20 s of CPU. Reading the
    caller's frame directly names the same function.
    """
    if self.container_spec is None:
        caller = sys._getframe(1).f_code.co_name
        raise ValueError(
            f"{caller} can only be used on single-step components, not pipelines used as "
            "components, or special components like importers."
        )


def pytest_configure(config: pytest.Config) -> None:
    """Swap in the cheap check while kfp's is the known ``inspect.stack()`` one; else keep kfp's."""
    global _original_check
    from kfp.dsl.pipeline_task import PipelineTask

    check = PipelineTask.__dict__.get("_ensure_container_spec_exists")
    if check is not None and "inspect.stack()" in inspect.getsource(check):
        _original_check = check
        PipelineTask._ensure_container_spec_exists = _ensure_container_spec_exists


def pytest_unconfigure(config: pytest.Config) -> None:
    """Give kfp its own check back."""
    if _original_check is not None:
        from kfp.dsl.pipeline_task import PipelineTask

        PipelineTask._ensure_container_spec_exists = _original_check


@pytest.fixture(scope="session")
def cluster_packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every pipeline compiled once for the cluster profile, no accelerator: package by name.

    The tests read the files (pipeline_ir.read_package); none writes to them.
    """
    from pipeline_ir import cluster_settings

    from pipelines.run import compile_all

    packages = compile_all(tmp_path_factory.mktemp("cluster-ir"), cluster_settings())
    return {path.stem: path for path in packages}
