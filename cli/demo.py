"""``trending demo``: the whole closed loop on this machine, with the real pieces.

synthetic titles (bad rows quarantined) -> snapshot -> Feast -> KFP training pipeline (kfp.local)
-> registry (v1 production) -> KServe ModelServer (V1, V2, a bad request) -> normal traffic ->
drifted traffic -> drift service -> Prometheus DriftDetected -> Alertmanager -> retrain trigger
(bearer token) -> continuous-training run -> gate -> v2 staged as canary -> local canary rollout ->
promotion -> a broken canary rolled back -> timeline from the registry's event log and an HTML
report. Without Prometheus/Alertmanager installed it stops after serving and says what to install.
Every process it starts is stopped at the end, on errors and on Ctrl-C.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import typer
from rich.markup import escape

from cli.common import console, load_settings
from cli.local_monitoring import (
    MonitoringBinariesMissingError,
    find_monitoring_binaries,
    running_monitoring,
    write_local_monitoring_configs,
)
from cli.pipeline import pipeline_arguments
from cli.processes import free_port, running_service, wait_until
from cli.story import (
    DriftSample,
    below_default_policy,
    find_gate_decision,
    gate_reasons,
    timeline,
    write_report,
)
from trending.data.ingest import ingest_frame, publish_features
from trending.data.synthetic import DriftKnobs, generate_titles
from trending.modelling.runs import RunLog
from trending.registry import Event, Registry
from trending.settings import Settings

REPO = Path(__file__).resolve().parents[1]
MONITORING = REPO / "monitoring"
# BERT on a 2-core CPU: one epoch capped at a few optimizer steps keeps the demo in minutes (it is
# trained and evaluated for real, but cannot win at this size; the pipeline default is 3 epochs).
DEMO_BERT = {"epochs": 1, "max_length": 64, "max_steps": 8}
DEMO_PARAMS = {"bert_params_json": json.dumps(DEMO_BERT), "robustness_cases": "50"}
# The demo's changes to the gate: robustness is measured and reported, not gated, and a candidate
# may trail the linear baseline by up to 0.01 micro-F1. XGBoost fails the directional:horror check
# on most splits of the synthetic data (its trees leave the Horror score unchanged when "haunted
# house" is appended), and on 1,200 synthetic titles (~0.97 micro-F1) XGBoost and the linear
# baseline are within +-0.005 of each other depending on the split; either would stop the story
# at step 3 on some runs. The demo prints every check that the default policy would fail.
DEMO_GATE = {"min_robustness_pass_rate": 0.0, "baseline_margin": -0.01}
# What changes after the drift onset: unseen words, uniform genre priors, longer plots.
DRIFT = DriftKnobs(vocabulary_shift=0.3, genre_prior_shift=1.0, text_length_scale=1.5)
DRIFT_ONSET = datetime(2024, 3, 1, tzinfo=UTC)
# Labelled titles that arrive after the onset (the retraining run's drift_selected window). With
# 500 + 500 the retrained XGBoost loses to production on micro-F1 on some splits (too few rows);
# with 1,000 + 500 it wins on micro- and macro-F1 on every split tried (+0.04 / +0.05).
RECENT_DRIFTED, RECENT_AS_BEFORE = 1000, 500
WINDOW = 300  # drift-service window (requests' titles)
# Canary: production thresholds for errors and model quality; windows and request minimums
# shortened to the demo's time scale, latency not judged (a shared 2-core box says nothing).
CANARY_POLICY: dict[str, Any] = {
    "steps": [25, 50], "window_seconds": 10, "settle_seconds": 2, "min_requests": 20,
    "max_holds": 4, "max_p95_latency_ratio": 20, "latency_slack_seconds": 5,
}  # fmt: skip
SAMPLE_PLOTS = (
    "A haunted house wakes a possessed demon and a family lives through a night of terror.",
    "Two detectives chase a cartel after a bank heist goes wrong and a murder follows.",
    "An alien spaceship lands and a robot must save the planet in the far future.",
)


def _with_bad_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Three broken rows, to show that validation quarantines them with reasons."""
    bad = frame.head(3).copy()
    bad["title_id"] = ["bad:empty-plot", "bad:unknown-genre", frame["title_id"].iloc[0]]
    bad.loc[bad.index[0], "plot"] = "   "
    bad.loc[bad.index[1], "genres"] = ["Cyberpunk"]
    return pd.concat([frame, bad], ignore_index=True)


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


def _train(settings: Settings, home: Path, snapshot_id: str) -> tuple[int | None, dict[str, Any]]:
    """The training pipeline on kfp.local; returns the registered version and the gate decision."""
    from pipelines.run import run_local, typed_arguments

    log = home / "logs" / "training-pipeline.log"
    arguments = {
        **pipeline_arguments(settings, "training", snapshot_id=snapshot_id),
        **typed_arguments("training", DEMO_PARAMS),
        "gate_policy_json": json.dumps(DEMO_GATE),
    }
    decision = json.loads(
        Path(run_local("training", arguments, home / "kfp", log).path).read_text()
    )
    run = RunLog.from_uri(settings.resolved_registry_uri, settings.model_name).get(
        decision["run_id"]
    )
    _print_run(run.metrics, run.champion, decision)
    console.print(f"registered version {run.registered_version} (step logs: {log})")
    return run.registered_version, decision


def _print_run(metrics: dict[str, dict[str, Any]], champion: str | None, decision: dict) -> None:
    for family, values in metrics.items():
        mark = "  <- champion" if family == champion else ""
        console.print(
            f"  {family:10s} micro-F1={values['micro_f1']:.3f} "
            f"macro-F1={values['macro_f1']:.3f}{mark}"
        )
    reasons = gate_reasons(decision)
    shown = [
        r for r in reasons if r.startswith("FAIL") or re.search(r"regression|floor:|baseline", r)
    ]
    verdict = "[green]passed[/green]" if champion else "[red]no candidate passed[/red]"
    console.print(f"gate {verdict} ({champion or 'best candidate'}): {len(reasons)} checks")
    for line in shown[:6]:
        console.print(f"    {line}")
    for line in below_default_policy(decision):
        console.print(f"    [yellow]would fail the default policy:[/yellow] {line}")


def _predictor(
    settings: Settings, home: Path, payload_log_url: str | None
) -> tuple[list[str], str]:
    http_port = free_port()
    args = [
        "--model_name", settings.model_name, "--registry_uri", settings.resolved_registry_uri,
        "--cache_dir", str(home / "bundles"), "--http_port", str(http_port),
        "--grpc_port", str(free_port()),
    ]  # fmt: skip
    if payload_log_url:
        args += ["--payload_log_url", payload_log_url]
    return args, f"http://127.0.0.1:{http_port}"


def _show_serving(url: str, model: str) -> None:
    """V1 and V2 requests and a bad request against the running predictor."""
    instances = [{"title_id": f"demo:{i}", "plot": p} for i, p in enumerate(SAMPLE_PLOTS)]
    v1 = httpx.post(f"{url}/v1/models/{model}:predict", json={"instances": instances}, timeout=30)
    for plot, prediction in zip(SAMPLE_PLOTS, v1.json()["predictions"], strict=True):
        top = sorted(prediction["scores"].items(), key=lambda kv: -kv[1])[:3]
        top_text = ", ".join(f"{g} {s:.2f}" for g, s in top)
        console.print(f"[bold]V1[/bold] {plot[:55]}… -> {prediction['genres']} (top: {top_text})")
    v2_input = {"name": "plot", "shape": [1], "datatype": "BYTES", "data": [SAMPLE_PLOTS[0]]}
    v2 = httpx.post(f"{url}/v2/models/{model}/infer", json={"inputs": [v2_input]}, timeout=30)
    console.print(f"[bold]V2[/bold] outputs={json.dumps(v2.json()['outputs'][0]['data'])}")
    bad = httpx.post(f"{url}/v1/models/{model}:predict", json={"instances": [{"plot": " "}]})
    console.print(f"[bold]bad request[/bold] -> {bad.status_code} {bad.json()}")


def _send(url: str, model: str, titles: pd.DataFrame, batch: int = 25) -> None:
    """Send ``titles`` to the predictor's V1 endpoint in batches (the payload logger copies them)."""
    with httpx.Client(timeout=60) as client:
        for start in range(0, len(titles), batch):
            part = titles.iloc[start : start + batch]
            instances = [
                {"title_id": t, "plot": p, "reviews": list(r)}
                for t, p, r in zip(part["title_id"], part["plot"], part["reviews"], strict=True)
            ]
            answer = client.post(f"{url}/v1/models/{model}:predict", json={"instances": instances})
            answer.raise_for_status()


def _drift_rows(url: str) -> list[dict[str, Any]]:
    return [r for r in httpx.get(f"{url}/drift", timeout=5).json() if len(r["detectors"]) == 2]


def _samples(rows: list[dict[str, Any]], phase: str) -> list[DriftSample]:
    now = datetime.now(UTC)
    return [
        DriftSample(at=now, version=str(r["version"]), detector=name, p_value=o["p_value"],
                    threshold=o["threshold"], is_drift=o["is_drift"], phase=phase)
        for r in rows for name, o in r["detectors"].items()
    ]  # fmt: skip


def _print_drift(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        scores = ", ".join(
            f"{name} p={o['p_value']:.2g}{' DRIFT' if o['is_drift'] else ''}"
            for name, o in row["detectors"].items()
        )
        console.print(f"  v{row['version']} window={row['window_size']}: {scores}")


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


def _last_task(log: Path) -> str:
    if not log.is_file():
        return "starting"
    found = re.findall(r"Executing task \S*'([\w-]+)'", log.read_text(errors="replace"))
    return found[-1] if found else "starting"


def _retrain_finished(registry: Registry) -> dict[str, Any] | None:
    finished = [e for e in registry.events() if e.kind == "retrain_finished"]
    return finished[-1].details if finished else None


def _write_trigger_token(home: Path) -> Path:
    """A fresh bearer token for the retrain trigger; Alertmanager reads it from this file."""
    token_file = home / "secrets" / "trigger-token"
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text(secrets.token_urlsafe(24) + "\n")
    token_file.chmod(0o600)
    return token_file


def _retrain_log(home: Path, run_id: object) -> Path:
    """Where the trigger writes a retraining run's output (its ``--log_dir`` below)."""
    return home / "logs" / "retrain" / f"{run_id}.log"


@contextmanager
def _running_services(
    settings: Settings, home: Path, registry: Registry, binaries: dict[str, str]
) -> Iterator[dict[str, str]]:
    """Run drift service, trigger, Alertmanager, Prometheus and predictor; yield their URLs.

    Everything is stopped when the block ends, the trigger's retraining run first.
    """
    model, logs = settings.model_name, home / "logs"
    ports = {name: free_port() for name in ("drift", "trigger", "prometheus", "alertmanager")}
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    token_file = _write_trigger_token(home)
    predictor_args, url["predictor"] = _predictor(settings, home, f"{url['drift']}/")
    ports["predictor"] = int(url["predictor"].rsplit(":", 1)[1])
    # DriftDetected's `for` is 5m in production; the demo's windows refresh every second.
    configs = write_local_monitoring_configs(
        MONITORING, home / "monitoring", ports, token_file, drift_alert_for="5s"
    )
    # The drift service scores every version against production's training reference. (Its
    # --registry_uri mode downloads the startup version twice into one cache folder and then
    # refuses every event with 422, so the demo hands it the bundle.)
    production = registry.resolve("production")
    reference = registry.download(production, home / "drift-reference" / str(production))
    with ExitStack() as stack:
        console.rule(
            "4. serving + monitoring: predictor, drift service, trigger, Prometheus, Alertmanager"
        )
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


def _send_normal_traffic(url: dict[str, str], model: str, drift: list[DriftSample]) -> None:
    """One window of titles like the training data, scored by the drift service (no drift)."""
    console.rule("5. normal traffic: titles like the training data")
    _send(url["predictor"], model, generate_titles(WINDOW, seed=21))
    calm = wait_until(
        "the drift service to score a full window",
        lambda: [r for r in _drift_rows(url["drift"]) if r["window_size"] >= WINDOW],
        timeout=120,
        every=0.5,
    )
    drift.extend(_samples(calm, "normal"))
    _print_drift(calm)


def _ingest_recent_titles(settings: Settings) -> None:
    """Labelled titles that arrived after the onset: what the retraining run will train on."""
    recent = pd.concat([
        generate_titles(RECENT_DRIFTED, seed=8, drift=DRIFT, start=DRIFT_ONSET),
        generate_titles(RECENT_AS_BEFORE, seed=9, start=DRIFT_ONSET),
    ], ignore_index=True)  # fmt: skip
    labelled = ingest_frame(recent, settings, source="synthetic")
    console.print(f"new labelled titles since the onset {DRIFT_ONSET:%Y-%m-%d}: "
                  f"{labelled.report.counts['accepted']} ({RECENT_DRIFTED} drifted, "
                  f"{RECENT_AS_BEFORE} as before) -> snapshot {labelled.manifest.snapshot_id}")  # fmt: skip


def _send_drifted_traffic(
    settings: Settings, url: dict[str, str], drift: list[DriftSample]
) -> None:
    """A window of drifted titles, until the drift service flags drift."""
    console.rule("6. drifted traffic: new words, uniform genres, longer plots")
    console.print(f"knobs: {DRIFT}")
    _ingest_recent_titles(settings)
    drifted = generate_titles(WINDOW, seed=22, drift=DRIFT, start=DRIFT_ONSET)
    # In batches of 50, so the report's drift chart shows the p-values falling as the window fills.
    for start in range(0, WINDOW, 50):
        _send(url["predictor"], settings.model_name, drifted.iloc[start : start + 50])
        drift.extend(_samples(_drift_rows(url["drift"]), "drifted"))
    flagged = wait_until(
        "the drift service to flag drift",
        lambda: [r for r in _drift_rows(url["drift"]) if r["is_drift"]],
        timeout=120,
        every=0.5,
    )
    drift.extend(_samples(flagged, "drifted"))
    _print_drift(flagged)


def _wait_for_alert_and_trigger(
    url: dict[str, str], registry: Registry, home: Path, drift: list[DriftSample]
) -> Event:
    """Follow DriftDetected from Prometheus to the trigger's ``retrain_started`` event."""
    console.rule("7. alert: Prometheus DriftDetected -> Alertmanager -> retrain trigger")

    def firing() -> list[dict[str, Any]]:
        drift.extend(_samples(_drift_rows(url["drift"]), "drifted"))
        alerts = httpx.get(f"{url['prometheus']}/api/v1/alerts", timeout=5).json()
        return [a for a in alerts["data"]["alerts"]
                if a["labels"]["alertname"] == "DriftDetected" and a["state"] == "firing"]  # fmt: skip

    alert = wait_until("Prometheus to fire DriftDetected", firing, timeout=120, every=0.5)
    labels = alert[0]["labels"]
    console.print(f"Prometheus: DriftDetected firing (detector={labels['detector']}, "
                  f"version={labels['version']}, action={labels['action']})")  # fmt: skip
    started = wait_until(
        "the trigger to start a retraining run",
        lambda: [e for e in registry.events() if e.kind == "retrain_started"],
        timeout=120,
        every=0.5,
    )[0]
    run_id = started.details.get("run_id")
    console.print(f"trigger: {started.reason} -> run {run_id} "
                  f"(window {started.details.get('window')}; log {_retrain_log(home, run_id)})")  # fmt: skip
    return started


def _wait_for_retraining(home: Path, registry: Registry, started: Event) -> dict[str, Any] | None:
    """Show the retraining run's progress until the trigger records ``retrain_finished``."""
    console.rule("8. continuous-training run (kfp.local, launched by the trigger)")
    pipeline_log = home / "logs" / "continuous-training.log"
    run_log = _retrain_log(home, started.details.get("run_id"))
    began = time.monotonic()
    with console.status("retraining…") as status:

        def finished() -> dict[str, Any] | None:
            # A run that fails after its launch records no event; its log is the only sign.
            if run_log.is_file() and "error:" in run_log.read_text(errors="replace"):
                raise RuntimeError(f"the retraining run failed; see {run_log}")
            status.update(f"retraining: {_last_task(pipeline_log)} "
                          f"({time.monotonic() - began:.0f} s)")  # fmt: skip
            return _retrain_finished(registry)

        outcome = wait_until("the retraining run to finish", finished, timeout=1500, every=2)
    console.print(f"finished in {time.monotonic() - began:.0f} s (step logs: {pipeline_log})")
    return outcome


def _run_closed_loop(
    settings: Settings, home: Path, binaries: dict[str, str], drift: list[DriftSample]
) -> dict[str, Any] | None:
    """Serve with monitoring, drift the traffic, follow the alert to the finished retraining run.

    Drift-service scores seen on the way are appended to ``drift`` (for the report).
    """
    registry = Registry.from_uri(settings.resolved_registry_uri, settings.model_name)
    with _running_services(settings, home, registry, binaries) as url:
        _show_serving(url["predictor"], settings.model_name)
        _send_normal_traffic(url, settings.model_name, drift)
        _send_drifted_traffic(settings, url, drift)
        started = _wait_for_alert_and_trigger(url, registry, home, drift)
        return _wait_for_retraining(home, registry, started)


@contextmanager
def _section_errors() -> Iterator[None]:
    try:
        yield
    except (TimeoutError, RuntimeError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None


def demo(
    rows: int = typer.Option(1200, min=100, max=100_000, help="Synthetic titles to train on."),
) -> None:
    """Run the closed loop: data -> KFP -> KServe -> drift -> alert -> retrain -> canary."""
    from pipelines.run import output_to

    begun = time.monotonic()
    base = load_settings()
    home = (base.home / "demo").resolve()
    shutil.rmtree(home, ignore_errors=True)
    settings = base.model_copy(update={"home": home, "registry_uri": None})
    logs = home / "logs"
    registry = Registry.from_uri(settings.resolved_registry_uri, settings.model_name)
    drift: list[DriftSample] = []
    gate: dict[str, list[str]] = {}

    console.rule("1. data: synthetic titles, validated and snapshotted")
    result = ingest_frame(
        _with_bad_rows(generate_titles(rows, seed=settings.seed)), settings, source="synthetic"
    )
    counts = result.report.counts
    console.print(f"in={counts['in']} accepted={counts['accepted']} rejected={counts['rejected']}")
    for _, bad in result.report.rejected.iterrows():
        console.print(f"  quarantined row {bad['row']} ({bad['title_id']}): {bad['reason']}")
    snapshot_id = result.manifest.snapshot_id
    console.print(f"snapshot {snapshot_id}")

    console.rule("2. features: Feast apply + materialize (file offline store, SQLite online store)")
    with output_to(logs / "features.log"):
        published = publish_features(settings, snapshot_id)
    console.print(f"{published} titles in the online store (log: {logs / 'features.log'})")

    console.rule("3. training pipeline on kfp.local (SubprocessRunner)")
    console.print(f"demo parameters: {DEMO_PARAMS}; gate policy overrides: {DEMO_GATE}")
    first, decision = _train(settings, home, snapshot_id)
    gate["training run (v1)"] = gate_reasons(decision)
    if first is None:
        console.print("[red]nothing was registered: the gate refused every candidate (above)[/red]")
        _finish(settings, home, registry, drift, gate, begun)
        raise typer.Exit(1)

    try:
        binaries = find_monitoring_binaries()
    except MonitoringBinariesMissingError as missing:
        _serve_without_monitoring(settings, home, missing)
        _finish(settings, home, registry, drift, gate, begun)
        return

    with _section_errors():
        outcome = _run_closed_loop(settings, home, binaries, drift)
    run_id = outcome.get("run_id") if outcome else None
    decision = find_gate_decision(home / "kfp", run_id) if run_id else None
    if decision:
        gate["retraining run"] = gate_reasons(decision)
    comparison = (outcome or {}).get("comparison", {})
    _print_run(comparison, (outcome or {}).get("champion"), decision or {})
    console.print(f"outcome: [bold]{(outcome or {}).get('outcome')}[/bold]")
    canary = registry.alias("canary")
    if canary is None:
        console.print("[yellow]no new version was staged: the gate kept production (reasons "
                      "above), so there is no canary to roll out[/yellow]")  # fmt: skip
        _finish(settings, home, registry, drift, gate, begun)
        return

    with _section_errors():
        _canaries(settings, home, first, canary.version)
    _finish(settings, home, registry, drift, gate, begun)


def _serve_without_monitoring(
    settings: Settings, home: Path, missing: MonitoringBinariesMissingError
) -> None:
    """Step 4 without Prometheus/Alertmanager: serve and query v1, then say what to install."""
    console.rule("4. serving: KServe ModelServer loading the production bundle")
    args, url = _predictor(settings, home, None)
    ready = f"{url}/v2/models/{settings.model_name}/ready"
    with running_service("serving.predictor", args, ready, home / "logs" / "predictor.log"):
        _show_serving(url, settings.model_name)
    console.print(f"[yellow]{escape(str(missing))}[/yellow]\nThe drift -> alert -> retrain -> "
                  "canary part needs them: install them (or `sudo make system-deps`) and run "
                  "`make demo` again.")  # fmt: skip


def _canaries(settings: Settings, home: Path, previous: int, candidate: int) -> None:
    from cli.canary import run_local_canary

    console.rule(f"9. canary: v{candidate} next to production v{previous} (router, Prometheus)")
    console.print(f"policy overrides: {CANARY_POLICY}")
    healthy = run_local_canary(
        settings, canary_version=candidate, policy_overrides=CANARY_POLICY,
        workdir=home / "canary" / "healthy",
    )  # fmt: skip
    _print_decisions(healthy)
    if healthy.result != "promoted":
        console.print("[yellow]the healthy canary was rolled back (reasons above)[/yellow]")
        return
    console.rule(f"10. a broken canary: v{previous} on a server that rejects every request")
    broken = run_local_canary(
        settings, canary_version=previous, policy_overrides=CANARY_POLICY,
        workdir=home / "canary" / "broken", canary_max_instances=0,
    )  # fmt: skip
    _print_decisions(broken)


def _print_decisions(outcome: Any) -> None:
    for d in outcome.decisions:
        console.print(
            f"  v{outcome.canary_version} at {d.traffic_percent}%: {d.action} — {d.reason}"
        )
    colour = "green" if outcome.result == "promoted" else "red"
    console.print(f"result: [{colour}]{outcome.result}[/{colour}]")


def _finish(
    settings: Settings,
    home: Path,
    registry: Registry,
    drift: list[DriftSample],
    gate: dict[str, list[str]],
    begun: float,
) -> None:
    console.rule("timeline (registry event log)")
    events = registry.events()
    for line in timeline(events):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    runs = sorted(
        RunLog.from_uri(settings.resolved_registry_uri, settings.model_name).list(),
        key=lambda r: r.started_at,
    )
    report = write_report(home / "report.html", events=events, runs=runs, drift=drift, gate=gate)
    minutes, seconds = divmod(int(time.monotonic() - begun), 60)
    console.rule(
        f"done in {minutes}:{seconds:02d}: every process the demo started has stopped; "
        f"report {report}; state and logs in {home}"
    )
