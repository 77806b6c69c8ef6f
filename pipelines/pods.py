"""Run a compiled pipeline (the IR YAML that would be uploaded) with each step isolated like a pod.

kfp.local's SubprocessRunner runs every task as a subprocess of this interpreter, in this
process's working directory and environment, so steps can share a disk the cluster would not
give them. ``run_compiled`` runs the same IR with two kfp.local hooks wrapped:

- each step starts in its own fresh working directory, HOME and TMPDIR, with an environment of
  only PATH, the IR's container env and the Secrets the IR's Kubernetes platform spec mounts
  (looked up in a dict that plays the cluster's Secrets);
- what steps share is what KFP gives them: their input and output artifacts under the
  pipeline root.

A step that reads a local path another step wrote therefore fails here as it would on a cluster.
"""

from __future__ import annotations

import os
import subprocess
import threading
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

import yaml

# Variables a pod's runtime provides whatever the IR says (the image's PATH, a locale).
_RUNTIME_ENV = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT")


class SecretNotFoundError(KeyError):
    """The IR mounts a Secret (or key) the emulated cluster does not hold, as a pod would fail."""


@dataclass
class PodIsolation:
    """How steps are isolated.

    Attributes:
        root: Folder under which each step gets ``step-<n>-<executor>/{work,home,tmp}``.
        secrets: The cluster's Secrets in the namespace where KFP runs the pods: name -> key -> value.
        extra_env: Variables every step gets besides the IR's (e.g. a proxy setting); keep empty
            to run as the cluster would.
    """

    root: Path
    secrets: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    extra_env: Mapping[str, str] = field(default_factory=dict)


def load_package(package: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pipeline spec and the Kubernetes executors' platform config of a compiled YAML."""
    spec, *rest = yaml.safe_load_all(package.read_text())
    platform = rest[0] if rest else {}
    executors = (
        platform.get("platforms", {})
        .get("kubernetes", {})
        .get("deploymentSpec", {})
        .get("executors", {})
    )
    return spec, executors


def secret_env(
    platform_executor: Mapping[str, Any], secrets: Mapping[str, Mapping[str, str]]
) -> dict[str, str]:
    """The environment variables ``use_secret_as_env`` gives one executor's pod.

    Raises:
        SecretNotFoundError: A Secret or key the executor needs is absent (the pod would not start).
    """
    env: dict[str, str] = {}
    for mount in platform_executor.get("secretAsEnv", []):
        name = mount["secretName"]
        if name not in secrets:
            raise SecretNotFoundError(f"Secret {name!r} not found in the pods' namespace")
        for item in mount["keyToEnv"]:
            if item["secretKey"] not in secrets[name]:
                raise SecretNotFoundError(f"Secret {name!r} has no key {item['secretKey']!r}")
            env[item["envVar"]] = secrets[name][item["secretKey"]]
    return env


class _StepSandbox:
    """Fresh folders and environment per step; hooks into kfp.local's task dispatch."""

    def __init__(
        self, isolation: PodIsolation, spec: dict[str, Any], platform: dict[str, Any]
    ) -> None:
        self.isolation = isolation
        self.labels = {name: c.get("executorLabel") for name, c in spec["components"].items()}
        self.platform = platform
        self.current = threading.local()
        self.numbers = count(1)

    def dispatch(self, original: Any) -> Any:
        """Wrap run_single_task_implementation: remember which executor the thread runs."""

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            component = kwargs.get("component_name", args[1] if len(args) > 1 else None)
            self.current.executor = self.labels.get(component, component)
            return original(*args, **kwargs)

        return wrapped

    def run_subprocess(
        self, full_command: list[str], env_vars: dict[str, str] | None = None
    ) -> int:
        """kfp.local's run_local_subprocess, in the step's own folders and environment."""
        executor = getattr(self.current, "executor", None) or "step"
        folder = self.isolation.root / f"step-{next(self.numbers):02d}-{executor}"
        work, home, tmp = folder / "work", folder / "home", folder / "tmp"
        for path in (work, home, tmp):
            path.mkdir(parents=True)
        env = {k: os.environ[k] for k in _RUNTIME_ENV if k in os.environ}
        env |= dict(self.isolation.extra_env) | (env_vars or {})
        env |= secret_env(self.platform.get(executor, {}), self.isolation.secrets)
        env |= {"HOME": str(home), "TMPDIR": str(tmp)}
        with subprocess.Popen(
            full_command,
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        ) as process:
            assert process.stdout is not None
            for line in iter(process.stdout.readline, ""):
                print(line, end="")
            return process.wait()


@contextmanager
def _hooks(sandbox: _StepSandbox) -> Iterator[None]:
    from kfp.local import subprocess_task_handler, task_dispatcher

    saved = (
        task_dispatcher.run_single_task_implementation,
        subprocess_task_handler.run_local_subprocess,
    )
    task_dispatcher.run_single_task_implementation = sandbox.dispatch(saved[0])
    subprocess_task_handler.run_local_subprocess = sandbox.run_subprocess
    try:
        yield
    finally:
        task_dispatcher.run_single_task_implementation = saved[0]
        subprocess_task_handler.run_local_subprocess = saved[1]


def run_compiled(
    package: Path,
    arguments: Mapping[str, Any],
    pipeline_root: Path,
    isolation: PodIsolation | None = None,
) -> dict[str, Any]:
    """Run a compiled pipeline YAML with kfp.local; each step isolated when ``isolation`` is given.

    Args:
        package: The compiled IR, as uploaded to KFP.
        arguments: Run arguments (parameters without them take the IR's defaults).
        pipeline_root: Where KFP artifacts go (the only thing steps share).
        isolation: Per-step folders, environment and the cluster's Secrets; None runs as
            kfp.local does (shared cwd and environment).

    Returns:
        The pipeline's outputs by name.

    Raises:
        RuntimeError: A step failed.
    """
    from google.protobuf import json_format
    from kfp import local
    from kfp.local import pipeline_orchestrator
    from kfp.pipeline_spec import pipeline_spec_pb2

    spec, platform = load_package(package)
    proto = json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(pipeline_root),
        raise_on_error=True,
    )
    with warnings.catch_warnings():
        # The local runner warns for images without "python" in their name; ours is Python.
        warnings.filterwarnings("ignore", message=".*non-Python base image.*")
        if isolation is None:
            return pipeline_orchestrator.run_local_pipeline(proto, dict(arguments))
        with _hooks(_StepSandbox(isolation, spec, platform)):
            return pipeline_orchestrator.run_local_pipeline(proto, dict(arguments))
