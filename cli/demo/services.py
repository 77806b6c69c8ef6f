"""The processes of the demo's closed loop: predictor, drift service, trigger, monitoring."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path

from cli.common import console
from cli.demo.parameters import DEMO_GATE, DEMO_PARAMS, DRIFT_ONSET, WINDOW
from cli.demo.run import DemoRun
from cli.local_monitoring import running_monitoring
from cli.processes import RunningService, flags, running_service
from trending.settings import Settings


def running_predictor(
    run: DemoRun, payload_log_url: str | None
) -> AbstractContextManager[RunningService]:
    """``python -m serving.predictor`` serving production (ready once the model is loaded)."""
    args = flags(
        model_name=run.model,
        registry_uri=run.settings.resolved_registry_uri,
        cache_dir=run.home / "bundles",
        payload_log_url=payload_log_url,
        http_port=0,
        grpc_port=0,
    )
    return running_service(
        "serving.predictor",
        args,
        run.logs / "predictor.log",
        ready_path=f"/v2/models/{run.model}/ready",
    )


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
    """Run drift service, trigger, predictor, Alertmanager and Prometheus; yield their URLs.

    Each starts once what it points at is listening (the predictor logs to the drift service,
    Alertmanager calls the trigger, Prometheus scrapes the three and alerts Alertmanager).
    Everything is stopped when the block ends, the trigger's retraining run first.
    """
    settings, home, logs = run.settings, run.home, run.logs
    token_file = _write_trigger_token(home)
    # The drift service scores every version against production's training reference. (Its
    # --registry_uri mode downloads the startup version twice into one cache folder and then
    # refuses every event with 422, so the demo hands it the bundle.)
    production = run.registry.resolve("production")
    reference = run.registry.download(production, home / "drift-reference" / str(production))
    with ExitStack() as stack:
        drift = stack.enter_context(
            running_service(
                "serving.drift",
                flags(
                    bundle=reference,
                    model_name=run.model,
                    window_size=WINDOW,
                    min_window=100,
                    interval=1,
                    port=0,
                ),
                logs / "drift.log",
            )
        )
        # The retraining run is the trigger's child, so it inherits this environment.
        with _environment(_retrain_environment(settings, home)):
            trigger = stack.enter_context(
                running_service(
                    "serving.trigger",
                    flags(
                        token_file=token_file,
                        registry_uri=settings.resolved_registry_uri,
                        model_name=run.model,
                        cooldown_seconds=3600,
                        launcher="local",
                        log_dir=logs / "retrain",
                        port=0,
                    ),
                    logs / "trigger.log",
                )
            )
        stack.callback(_stop_children, trigger.pid)  # runs before the trigger stops
        predictor = stack.enter_context(running_predictor(run, f"{drift.url}/"))
        scraped = {"drift": drift, "trigger": trigger, "predictor": predictor}
        monitoring = stack.enter_context(
            running_monitoring(
                binaries,
                {job: service.address for job, service in scraped.items()},
                token_file,
                home / "monitoring",
                # DriftDetected's `for` is 5m in production; the demo's windows refresh every second.
                drift_alert_for="5s",
                log_dir=logs,
            )
        )
        url = {name: service.url for name, service in {**scraped, **monitoring}.items()}
        console.print(
            f"predictor {url['predictor']} (payload log -> drift {url['drift']}), "
            f"Prometheus {url['prometheus']}, Alertmanager {url['alertmanager']}, "
            f"trigger {url['trigger']} (bearer token in {token_file})"
        )
        yield url
