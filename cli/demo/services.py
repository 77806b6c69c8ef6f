"""The processes of the demo's closed loop: predictor, drift service, trigger, monitoring."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from cli.common import console
from cli.demo.parameters import DEMO_GATE, DEMO_PARAMS, DRIFT_ONSET, MONITORING, WINDOW
from cli.demo.run import DemoRun
from cli.local_monitoring import running_monitoring, write_local_monitoring_configs
from cli.processes import free_port, running_service
from trending.settings import Settings


def predictor_command(
    settings: Settings, home: Path, payload_log_url: str | None
) -> tuple[list[str], str]:
    """Flags of ``python -m serving.predictor`` serving production, and its URL."""
    http_port = free_port()
    args = [
        "--model_name", settings.model_name, "--registry_uri", settings.resolved_registry_uri,
        "--cache_dir", str(home / "bundles"), "--http_port", str(http_port),
        "--grpc_port", str(free_port()),
    ]  # fmt: skip
    if payload_log_url:
        args += ["--payload_log_url", payload_log_url]
    return args, f"http://127.0.0.1:{http_port}"


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for processes started inside the block, then restore them."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _stop_children(pid: int) -> None:
    """Terminate what process ``pid`` started (the trigger's retraining run) if still running."""
    import psutil

    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return
    for child in children:
        child.terminate()
    _, alive = psutil.wait_procs(children, timeout=10)
    for child in alive:
        child.kill()


def _retrain_environment(settings: Settings, home: Path) -> dict[str, str]:
    """What the trigger's retraining run needs: the demo's state and fast-enough parameters."""
    from pipelines.continuous_training import RETRAIN_GATE_POLICY

    return {
        "TRENDING_HOME": str(home),
        "TRENDING_REGISTRY_URI": settings.resolved_registry_uri,
        "TRENDING_FEATURE_REPO": str(Path(settings.feature_repo).resolve()),
        "TRENDING_PIPELINE_PARAMS": json.dumps(
            {
                **DEMO_PARAMS,
                "drift_since": DRIFT_ONSET.isoformat(),
                "gate_policy_json": json.dumps({**json.loads(RETRAIN_GATE_POLICY), **DEMO_GATE}),
            }
        ),
    }


def _write_trigger_token(home: Path) -> Path:
    """A fresh bearer token for the retrain trigger; Alertmanager reads it from this file."""
    token_file = home / "secrets" / "trigger-token"
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text(secrets.token_urlsafe(24) + "\n")
    token_file.chmod(0o600)
    return token_file


def retrain_log(home: Path, run_id: object) -> Path:
    """Where the trigger writes a retraining run's output (its ``--log_dir``)."""
    return home / "logs" / "retrain" / f"{run_id}.log"


@contextmanager
def running_closed_loop(run: DemoRun, binaries: dict[str, str]) -> Iterator[dict[str, str]]:
    """Run drift service, trigger, Alertmanager, Prometheus and predictor; yield their URLs.

    Everything is stopped when the block ends, the trigger's retraining run first.
    """
    settings, home, model, logs = run.settings, run.home, run.model, run.logs
    ports = {name: free_port() for name in ("drift", "trigger", "prometheus", "alertmanager")}
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    token_file = _write_trigger_token(home)
    predictor_args, url["predictor"] = predictor_command(settings, home, f"{url['drift']}/")
    ports["predictor"] = int(url["predictor"].rsplit(":", 1)[1])
    # DriftDetected's `for` is 5m in production; the demo's windows refresh every second.
    configs = write_local_monitoring_configs(
        MONITORING, home / "monitoring", ports, token_file, drift_alert_for="5s"
    )
    # The drift service scores every version against production's training reference. (Its
    # --registry_uri mode downloads the startup version twice into one cache folder and then
    # refuses every event with 422, so the demo hands it the bundle.)
    production = run.registry.resolve("production")
    reference = run.registry.download(production, home / "drift-reference" / str(production))
    with ExitStack() as stack:
        stack.enter_context(running_service("serving.drift", [
            "--bundle", str(reference), "--model_name", model,
            "--window_size", str(WINDOW), "--min_window", "100", "--interval", "1",
            "--host", "127.0.0.1",
            "--port", str(ports["drift"]),
        ], f"{url['drift']}/readyz", logs / "drift.log"))  # fmt: skip
        # The retraining run is the trigger's child, so it inherits this environment.
        with _environment(_retrain_environment(settings, home)):
            trigger = stack.enter_context(running_service("serving.trigger", [
                "--token_file", str(token_file), "--registry_uri", settings.resolved_registry_uri,
                "--model_name", model, "--cooldown_seconds", "3600", "--launcher", "local",
                "--log_dir", str(logs / "retrain"), "--host", "127.0.0.1",
                "--port", str(ports["trigger"]),
            ], f"{url['trigger']}/readyz", logs / "trigger.log"))  # fmt: skip
        stack.callback(_stop_children, trigger.pid)  # runs before the trigger stops
        stack.enter_context(running_monitoring(binaries, configs, ports, home, logs))
        stack.enter_context(running_service(
            "serving.predictor", predictor_args, f"{url['predictor']}/v2/models/{model}/ready",
            logs / "predictor.log",
        ))  # fmt: skip
        console.print(f"predictor {url['predictor']} (payload log -> drift {url['drift']}), "
                      f"Prometheus {url['prometheus']}, Alertmanager {url['alertmanager']}, "
                      f"trigger {url['trigger']} (bearer token in {token_file})")  # fmt: skip
        yield url
