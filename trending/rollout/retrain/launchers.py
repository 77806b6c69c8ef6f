"""Run launchers: start a continuous-training run locally (a subprocess) or through the KFP API."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import httpx

from trending.rollout.retrain.request import RetrainError, RetrainRequest

CONTINUOUS_TRAINING_COMMAND: tuple[str, ...] = (
    "-m",
    "cli",
    "pipeline",
    "run",
    "continuous-training",
)


class RunLauncher(Protocol):
    """Starts a continuous-training run without waiting for it; returns the run id."""

    def launch(self, request: RetrainRequest) -> str:
        """Start the run for ``request`` and return its id."""
        ...


class LocalCommandLauncher:
    """Runs the continuous-training pipeline locally, in a subprocess of this interpreter.

    The command is ``<python> -m cli pipeline run continuous-training --reason <r>
    --window <w>`` with ``TRENDING_MODEL_NAME`` and ``TRENDING_RETRAIN_RUN_ID`` in its environment;
    ``base_command`` replaces everything before ``--reason`` (tests use a tiny script).
    """

    def __init__(
        self,
        base_command: Sequence[str] | None = None,
        *,
        log_dir: Path | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.base_command = list(base_command or [sys.executable, *CONTINUOUS_TRAINING_COMMAND])
        self.log_dir = log_dir
        self.env = env
        self.cwd = cwd
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def command(self, request: RetrainRequest) -> list[str]:
        """The full command line for ``request``."""
        return [*self.base_command, "--reason", request.reason, "--window", request.window]

    def launch(self, request: RetrainRequest) -> str:
        """Start the subprocess (not waiting for it) and return ``local-<hex>``."""
        import os

        run_id = f"local-{uuid.uuid4().hex[:12]}"
        env = {
            **os.environ,
            **(self.env or {}),
            "TRENDING_MODEL_NAME": request.model_name,
            "TRENDING_RETRAIN_RUN_ID": run_id,
        }
        output: Any = subprocess.DEVNULL
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            output = open(self.log_dir / f"{run_id}.log", "wb")  # noqa: SIM115 - closed by reaper
        try:
            process = subprocess.Popen(
                self.command(request),
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.cwd,
            )
        except OSError as exc:
            raise RetrainError(
                f"could not start {self.base_command[0]!r}: {exc}; check the launcher command"
            ) from None
        finally:
            if output is not subprocess.DEVNULL:
                output.close()  # the child holds its own descriptor
        self.processes[run_id] = process
        # Reap the child when it ends so no zombie stays behind.
        threading.Thread(target=process.wait, name=f"reap-{run_id}", daemon=True).start()
        return run_id


class KfpApiLauncher:
    """Creates a run through the KFP v2beta1 REST API (``POST /apis/v2beta1/runs``), plain HTTP.

    Args:
        host: The KFP API endpoint, e.g. ``http://ml-pipeline.kubeflow:8888``.
        pipeline_id: The continuous-training pipeline's id.
        pipeline_version_id: The pipeline version to run.
        experiment_id: Experiment to file the run under (KFP's default when None).
        token: Bearer token for the API (e.g. a service-account token), if it needs one.
        client: An ``httpx.Client`` to use (tests, custom TLS); one is created otherwise.
    """

    def __init__(
        self,
        host: str,
        pipeline_id: str,
        pipeline_version_id: str,
        *,
        experiment_id: str | None = None,
        token: str | None = None,
        client: httpx.Client | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not host.startswith(("http://", "https://")):
            raise RetrainError(f"KFP host {host!r} must start with http:// or https://")
        self.url = host.rstrip("/") + "/apis/v2beta1/runs"
        self.pipeline_id = pipeline_id
        self.pipeline_version_id = pipeline_version_id
        self.experiment_id = experiment_id
        self.token = token
        self.client = client or httpx.Client(timeout=timeout)

    def body(self, request: RetrainRequest) -> dict[str, Any]:
        """The v2beta1 Run object for ``request``."""
        body: dict[str, Any] = {
            "display_name": f"continuous-training {request.model_name} ({request.reason})",
            "description": (
                f"requested by {request.actor}: {request.reason}, {request.window} window"
            ),
            "pipeline_version_reference": {
                "pipeline_id": self.pipeline_id,
                "pipeline_version_id": self.pipeline_version_id,
            },
            "runtime_config": {
                "parameters": {
                    "model_name": request.model_name,
                    "reason": request.reason,
                    "window": request.window,
                }
            },
        }
        if self.experiment_id:
            body["experiment_id"] = self.experiment_id
        return body

    def launch(self, request: RetrainRequest) -> str:
        """POST the run and return the ``run_id`` KFP assigned."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = self.client.post(self.url, json=self.body(request), headers=headers)
        except httpx.HTTPError as exc:
            raise RetrainError(f"KFP API {self.url} unreachable: {exc}") from None
        if response.status_code >= 400:
            raise RetrainError(
                f"KFP API refused the run ({response.status_code}): {response.text[:500]}"
            )
        run_id = response.json().get("run_id")
        if not run_id:
            raise RetrainError(f"KFP API answered without a run_id: {response.text[:500]}")
        return str(run_id)
