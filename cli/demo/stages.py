"""The demo's steps, one function each, in the order the story tells them."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from rich.markup import escape

from cli.common import console
from cli.demo.output import print_decisions, print_drift, print_run
from cli.demo.parameters import (
    CANARY_POLICY,
    DEMO_DRIFT_BACKEND,
    DEMO_GATE,
    DEMO_PARAMS,
    DRIFT,
    DRIFT_BACKEND_NOTE,
    DRIFT_ONSET,
    RECENT_AS_BEFORE,
    RECENT_DRIFTED,
    WINDOW,
)
from cli.demo.run import DemoRun
from cli.demo.services import retrain_log, running_closed_loop, running_predictor
from cli.demo.traffic import drift_rows, drift_samples, send_titles, show_serving
from cli.local_monitoring import MonitoringBinariesMissingError
from cli.pipeline import pipeline_arguments
from cli.processes import wait_until
from cli.story import find_gate_decision, gate_reasons
from trending.data.ingest import ingest_frame, publish_features
from trending.data.synthetic import generate_titles
from trending.modelling.runs import RunLog
from trending.registry import Event


def _with_bad_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Three broken rows, to show that validation quarantines them with reasons."""
    bad = frame.head(3).copy()
    bad["title_id"] = ["bad:empty-plot", "bad:unknown-genre", frame["title_id"].iloc[0]]
    bad.loc[bad.index[0], "plot"] = "   "
    bad.loc[bad.index[1], "genres"] = ["Cyberpunk"]
    return pd.concat([frame, bad], ignore_index=True)


def ingest_titles(run: DemoRun, rows: int) -> str:
    """1. Synthetic titles plus three broken rows, validated and snapshotted; the snapshot id."""
    console.rule("1. data: synthetic titles, validated and snapshotted")
    titles = _with_bad_rows(generate_titles(rows, seed=run.settings.seed))
    result = ingest_frame(titles, run.settings, source="synthetic")
    counts = result.report.counts
    console.print(f"in={counts['in']} accepted={counts['accepted']} rejected={counts['rejected']}")
    for _, bad in result.report.rejected.iterrows():
        console.print(f"  quarantined row {bad['row']} ({bad['title_id']}): {bad['reason']}")
    console.print(f"snapshot {result.manifest.snapshot_id}")
    return result.manifest.snapshot_id


def publish_snapshot(run: DemoRun, snapshot_id: str) -> None:
    """2. The snapshot's features into Feast: apply, then materialize into the online store."""
    from pipelines.run import output_to

    console.rule("2. features: Feast apply + materialize (file offline store, SQLite online store)")
    with output_to(run.logs / "features.log"):
        published = publish_features(run.settings, snapshot_id)
    console.print(f"{published} titles in the online store (log: {run.logs / 'features.log'})")


def train(run: DemoRun, snapshot_id: str) -> int | None:
    """3. The training pipeline on kfp.local; the version it registered (None: gate refused)."""
    from pipelines.run import run_local, typed_arguments

    console.rule("3. training pipeline on kfp.local (SubprocessRunner)")
    console.print(f"demo parameters: {DEMO_PARAMS}; gate policy overrides: {DEMO_GATE}")
    console.print(
        f"drift detector backend: {DEMO_DRIFT_BACKEND}, {DRIFT_BACKEND_NOTE[DEMO_DRIFT_BACKEND]}"
    )
    log = run.logs / "training-pipeline.log"
    arguments = {
        **pipeline_arguments(run.settings, "training", snapshot_id=snapshot_id),
        **typed_arguments("training", DEMO_PARAMS),
        "gate_policy_json": json.dumps(DEMO_GATE),
    }
    output = run_local("training", arguments, run.home / "kfp", log)
    decision = json.loads(Path(output.path).read_text())
    record = RunLog.from_uri(run.settings.resolved_registry_uri, run.model).get(decision["run_id"])
    print_run(record.metrics, record.champion, decision)
    console.print(f"registered version {record.registered_version} (step logs: {log})")
    run.gate["training run (v1)"] = gate_reasons(decision)
    return record.registered_version


def serve_without_monitoring(run: DemoRun, missing: MonitoringBinariesMissingError) -> None:
    """4. Without Prometheus/Alertmanager: serve and query v1, then say what to install."""
    console.rule("4. serving: KServe ModelServer loading the production bundle")
    with running_predictor(run, payload_log_url=None) as predictor:
        show_serving(predictor.url, run.model)
    console.print(
        f"[yellow]{escape(str(missing))}[/yellow]\nThe drift -> alert -> retrain -> canary part "
        "needs them: install them (or `sudo make system-deps`) and run `make demo` again."
    )


def close_the_loop(run: DemoRun, binaries: dict[str, str]) -> dict[str, Any] | None:
    """4.-8. Serve with monitoring, drift the traffic, follow the alert to the retraining run.

    Returns:
        The ``retrain_finished`` event's details (None if the run recorded none).
    """
    console.rule(
        "4. serving + monitoring: predictor, drift service, trigger, Prometheus, Alertmanager"
    )
    with running_closed_loop(run, binaries) as url:
        show_serving(url["predictor"], run.model)
        send_normal_traffic(run, url)
        send_drifted_traffic(run, url)
        started = wait_for_alert_and_trigger(run, url)
        return wait_for_retraining(run, started)


def send_normal_traffic(run: DemoRun, url: dict[str, str]) -> None:
    """5. One window of titles like the training data, scored by the drift service (no drift)."""
    console.rule("5. normal traffic: titles like the training data")
    send_titles(url["predictor"], run.model, generate_titles(WINDOW, seed=21))
    calm = wait_until(
        "the drift service to score a full window",
        lambda: [r for r in drift_rows(url["drift"]) if r["window_size"] >= WINDOW],
        timeout=120,
        every=0.5,
    )
    run.drift.extend(drift_samples(calm, "normal"))
    print_drift(calm)


def _ingest_recent_titles(run: DemoRun) -> None:
    """Labelled titles that arrived after the onset: what the retraining run will train on."""
    recent = pd.concat(
        [
            generate_titles(RECENT_DRIFTED, seed=8, drift=DRIFT, start=DRIFT_ONSET),
            generate_titles(RECENT_AS_BEFORE, seed=9, start=DRIFT_ONSET),
        ],
        ignore_index=True,
    )
    labelled = ingest_frame(recent, run.settings, source="synthetic")
    console.print(
        f"new labelled titles since the onset {DRIFT_ONSET:%Y-%m-%d}: "
        f"{labelled.report.counts['accepted']} ({RECENT_DRIFTED} drifted, "
        f"{RECENT_AS_BEFORE} as before) -> snapshot {labelled.manifest.snapshot_id}"
    )


def send_drifted_traffic(run: DemoRun, url: dict[str, str]) -> None:
    """6. A window of drifted titles, until the drift service flags drift."""
    console.rule("6. drifted traffic: new words, uniform genres, longer plots")
    console.print(f"knobs: {DRIFT}")
    _ingest_recent_titles(run)
    drifted = generate_titles(WINDOW, seed=22, drift=DRIFT, start=DRIFT_ONSET)
    # In batches of 50, so the report's drift chart shows the p-values falling as the window fills.
    for start in range(0, WINDOW, 50):
        send_titles(url["predictor"], run.model, drifted.iloc[start : start + 50])
        run.drift.extend(drift_samples(drift_rows(url["drift"]), "drifted"))
    flagged = wait_until(
        "the drift service to flag drift",
        lambda: [r for r in drift_rows(url["drift"]) if r["is_drift"]],
        timeout=120,
        every=0.5,
    )
    run.drift.extend(drift_samples(flagged, "drifted"))
    print_drift(flagged)


def wait_for_alert_and_trigger(run: DemoRun, url: dict[str, str]) -> Event:
    """7. Follow DriftDetected from Prometheus to the trigger's ``retrain_started`` event."""
    console.rule("7. alert: Prometheus DriftDetected -> Alertmanager -> retrain trigger")

    def firing() -> list[dict[str, Any]]:
        run.drift.extend(drift_samples(drift_rows(url["drift"]), "drifted"))
        alerts = httpx.get(f"{url['prometheus']}/api/v1/alerts", timeout=5).json()
        return [
            a
            for a in alerts["data"]["alerts"]
            if a["labels"]["alertname"] == "DriftDetected" and a["state"] == "firing"
        ]

    alert = wait_until("Prometheus to fire DriftDetected", firing, timeout=120, every=0.5)
    labels = alert[0]["labels"]
    console.print(
        f"Prometheus: DriftDetected firing (detector={labels['detector']}, "
        f"version={labels['version']}, action={labels['action']})"
    )
    started = wait_until(
        "the trigger to start a retraining run",
        lambda: [e for e in run.registry.events() if e.kind == "retrain_started"],
        timeout=120,
        every=0.5,
    )[0]
    run_id = started.details.get("run_id")
    console.print(
        f"trigger: {started.reason} -> run {run_id} "
        f"(window {started.details.get('window')}; log {retrain_log(run.home, run_id)})"
    )
    return started


def _last_task(log: Path) -> str:
    """The pipeline task the log says is running now."""
    if not log.is_file():
        return "starting"
    found = re.findall(r"Executing task \S*'([\w-]+)'", log.read_text(errors="replace"))
    return found[-1] if found else "starting"


def wait_for_retraining(run: DemoRun, started: Event) -> dict[str, Any] | None:
    """8. Show the retraining run's progress until the trigger records ``retrain_finished``."""
    console.rule("8. continuous-training run (kfp.local, launched by the trigger)")
    pipeline_log = run.logs / "continuous-training.log"
    run_log = retrain_log(run.home, started.details.get("run_id"))
    began = time.monotonic()
    with console.status("retraining…") as status:

        def finished() -> dict[str, Any] | None:
            # A run that fails after its launch records no event; its log is the only sign.
            if run_log.is_file() and "error:" in run_log.read_text(errors="replace"):
                raise RuntimeError(f"the retraining run failed; see {run_log}")
            status.update(
                f"retraining: {_last_task(pipeline_log)} ({time.monotonic() - began:.0f} s)"
            )
            done = [e for e in run.registry.events() if e.kind == "retrain_finished"]
            return done[-1].details if done else None

        outcome = wait_until("the retraining run to finish", finished, timeout=1500, every=2)
    console.print(f"finished in {time.monotonic() - began:.0f} s (step logs: {pipeline_log})")
    return outcome


def show_retraining(run: DemoRun, outcome: dict[str, Any] | None) -> int | None:
    """8. The retraining run's scores and gate; the version it staged as canary, if any."""
    outcome = outcome or {}
    run_id = outcome.get("run_id")
    decision = find_gate_decision(run.home / "kfp", run_id) if run_id else None
    if decision:
        run.gate["retraining run"] = gate_reasons(decision)
    print_run(outcome.get("comparison", {}), outcome.get("champion"), decision or {})
    console.print(f"outcome: [bold]{outcome.get('outcome')}[/bold]")
    canary = run.registry.alias("canary")
    if canary is None:
        console.print(
            "[yellow]no new version was staged: the gate kept production (reasons above), "
            "so there is no canary to roll out[/yellow]"
        )
        return None
    return canary.version


def roll_out_canaries(run: DemoRun, previous: int, candidate: int) -> None:
    """9. The candidate as a canary next to production; 10. a broken canary, rolled back."""
    from cli.canary import run_local_canary

    console.rule(f"9. canary: v{candidate} next to production v{previous} (router, Prometheus)")
    console.print(f"policy overrides: {CANARY_POLICY}")
    healthy = run_local_canary(
        run.settings,
        canary_version=candidate,
        policy_overrides=CANARY_POLICY,
        workdir=run.home / "canary" / "healthy",
    )
    print_decisions(healthy)
    if healthy.result != "promoted":
        console.print("[yellow]the healthy canary was rolled back (reasons above)[/yellow]")
        return
    console.rule(f"10. a broken canary: v{previous} on a server that rejects every request")
    broken = run_local_canary(
        run.settings,
        canary_version=previous,
        policy_overrides=CANARY_POLICY,
        workdir=run.home / "canary" / "broken",
        canary_max_instances=0,
    )
    print_decisions(broken)
