"""The trigger's cluster launcher: start the uploaded continuous-training version on KFP.

``serving`` never imports ``kfp`` (docs/adr/0002-import-direction.md), so the KFP call is made by
the CLI, which may: the launcher runs ``<python> -m cli pipeline start <pipeline> --json`` in a
subprocess (the trigger's image ships ``cli/``), and reads the run id from its one JSON line.
The CLI builds every pipeline parameter from the same settings the chart's ConfigMap gives the
trigger (``pipelines.cluster.pipeline_defaults`` and ``TRENDING_PIPELINE_PARAMS``); the launcher
adds what only the alert knows: reason, window, the drift onset and the alert group, and names
the run after the alert group, so a repeated alert is visible as a second run of the same name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from trending.rollout.retrain import RetrainError, RetrainRequest

START_COMMAND: tuple[str, ...] = ("-m", "cli", "pipeline", "start")
# The trigger's own secrets stay out of the CLI's environment (it needs the KFP token only).
PRIVATE_VARIABLES = frozenset({"TRENDING_TRIGGER_TOKEN", "TRENDING_FEEDBACK_TOKEN"})


def alert_group(request: RetrainRequest) -> str:
    """The Alertmanager group that asked for ``request``, or ``periodic-check`` (the trigger's own).

    Alertmanager's group key is ``<route path>:{<group labels>}``; the group labels part is what
    tells one group from another, so that is the name.
    """
    key = str(request.evidence.get("group_key") or "")
    if not key:
        return "periodic-check"
    _, sep, labels = key.rpartition(":{")
    return "{" + labels if sep else key


def run_name(request: RetrainRequest) -> str:
    """The run's display name: model, reason and alert group (a repeat has the same name)."""
    return f"retrain {request.model_name} ({request.reason}) {alert_group(request)}"[:200]


def run_parameters(request: RetrainRequest) -> dict[str, str]:
    """The parameters only the request knows; the settings give every other one (in the CLI)."""
    parameters = {
        "model_name": request.model_name,
        "reason": request.reason,
        "window": request.window,
        "alert_group": alert_group(request),
    }
    starts_at = request.evidence.get("starts_at")
    if request.window == "drift_selected" and starts_at:
        parameters["drift_since"] = str(starts_at)  # the alert's start is the drift evidence
    return parameters


class KfpPipelineLauncher:
    """Starts the uploaded continuous-training pipeline version through ``kfp.Client`` (via the CLI).

    Args:
        pipeline: The uploaded pipeline's name (``trending pipeline upload`` names it after the
            pipeline: ``continuous-training``).
        version: The upload's version label (the chart's appVersion); None: the newest version.
        experiment: KFP experiment of the runs.
        host: KFP API endpoint (None: the CLI's TRENDING_KFP_HOST).
        namespace: KFP namespace (multi-user installs).
        python: Interpreter that runs the CLI.
        environ: The CLI's environment (default: this process's, without the trigger's secrets).
        timeout: Seconds the CLI may take to create the run.
    """

    def __init__(
        self,
        pipeline: str,
        version: str | None,
        *,
        experiment: str = "trending",
        host: str | None = None,
        namespace: str | None = None,
        python: str = sys.executable,
        environ: Mapping[str, str] | None = None,
        timeout: float = 300.0,
    ) -> None:
        self.pipeline = pipeline
        self.version = version
        self.experiment = experiment
        self.host = host
        self.namespace = namespace
        self.python = python
        self.environ = environ
        self.timeout = timeout
        self.started: list[dict[str, Any]] = []

    def command(self, request: RetrainRequest) -> list[str]:
        """The CLI command line that starts the run for ``request``."""
        command = [self.python, *START_COMMAND, self.pipeline, "--json"]
        command += ["--run-name", run_name(request), "--experiment", self.experiment]
        if self.version:
            command += ["--version", self.version]
        if self.host:
            command += ["--host", self.host]
        if self.namespace:
            command += ["--namespace", self.namespace]
        for key, value in run_parameters(request).items():
            command += ["--param", f"{key}={value}"]
        return command

    def _environment(self) -> dict[str, str]:
        source = os.environ if self.environ is None else self.environ
        return {k: v for k, v in source.items() if k not in PRIVATE_VARIABLES}

    def launch(self, request: RetrainRequest) -> str:
        """Run the CLI until KFP accepted the run; return KFP's run id."""
        try:
            done = subprocess.run(
                self.command(request),
                capture_output=True,
                text=True,
                env=self._environment(),
                timeout=self.timeout,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RetrainError(f"`python -m cli pipeline start` did not finish: {exc}") from None
        if done.returncode != 0:
            raise RetrainError(
                f"KFP did not start the run (`python -m cli pipeline start` exited "
                f"{done.returncode}): {_tail(done.stderr or done.stdout)}"
            )
        answer = _last_json_line(done.stdout)
        if not answer.get("run_id"):
            raise RetrainError(f"the CLI answered without a run id: {_tail(done.stdout)}")
        self.started.append(answer)
        return str(answer["run_id"])


def _tail(text: str, lines: int = 5) -> str:
    return " | ".join(line for line in text.strip().splitlines()[-lines:]) or "(no output)"


def _last_json_line(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.strip().splitlines()):
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return {}
