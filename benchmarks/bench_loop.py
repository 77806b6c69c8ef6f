"""Closed monitoring loop: time from drift injection to the start of a retraining run (goal: <= 2 min).

Run: ``.venv/bin/python benchmarks/bench_loop.py [--repeats 3]`` or ``python -m benchmarks loop``.
Writes ``benchmarks/results/loop.json`` with the command, date, machine and load.

Real processes on loopback, as in tests/integration/test_monitoring_loop.py: the KServe predictor
(payload log -> drift service), the drift service, the retrain trigger, and Prometheus +
Alertmanager running the shipped monitoring/ configs (``cli.local_monitoring``) with a 5 s
scrape and evaluation interval. Only ports, the token file and the DriftDetected ``for`` change
(``--alert_for``, 5 s as in ``make demo``; 5 m in the shipped rule, which adds 5 minutes by
design). The drift service keeps its own defaults (window 1,000, scored every 10 s).

Each repeat starts every process afresh, fills the window with titles like the training data,
waits until Prometheus has scraped "no drift", then sends drifted titles (the demo's knobs) one
per request at ``--rate`` requests/s and follows the loop. Stages, in seconds after the first
drifted request:

- drift_flagged: the drift service's ``trending_drift_is_drift`` gauge is 1 (polled every 0.2 s);
- alert_pending: Prometheus's ``activeAt`` of DriftDetected (the first evaluation that saw it);
- alert_firing: DriftDetected is firing (polled);
- retrain_requested: the trigger's ``retrain_requested`` event (Alertmanager's webhook arrived);
- retrain_started: the trigger's ``retrain_started`` event (its launcher returned a run id);
- run_process_started: the launched run's own first statement (its clock).

``--profile cluster`` runs the cluster profile's path instead, as tests/integration/
test_cluster_loop.py does: the bundle's detector uses the Alibi Detect backend (without the
semantic MMD detector, whose MiniLM encoder bench_drift.py times), and the trigger runs with
``--launcher kfp``: ``kfp.Client`` (through ``python -m cli pipeline start``) starts the uploaded
continuous-training version on a recording KFP v2beta1 endpoint (tests/fakes/kfp_api.py; no KFP
API server runs here). Its last stage is ``run_requested``: the endpoint received the run's
``POST /runs`` (polled every 0.2 s), and ``retrain_started`` follows it (the run id returned).
Results are merged into loop.json under ``cluster`` (the local profile's keys stay).

The launcher is the real ``LocalCommandLauncher`` (``--launcher local``) with ``--command`` set to
a four-line script that records the launch: the trigger really starts a subprocess, but not the
continuous-training pipeline (its cost is in bench_pipeline.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import yaml
from prometheus_client.parser import text_string_to_metric_families

from cli.local_monitoring import (
    find_monitoring_binaries,
    running_monitoring,
)
from cli.processes import flags, running_service, wait_until
from trending.data.synthetic import DriftKnobs, generate_titles
from trending.registry import Registry

# The recording KFP endpoint lives with the tests' fakes (benchmarks are not packaged).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

REPO = Path(__file__).resolve().parents[1]
MONITORING = REPO / "monitoring"
RESULTS = REPO / "benchmarks" / "results" / "loop.json"
MODEL = "genre-classifier"
GOAL_SECONDS = 120.0
# cli/demo.py's drift: unseen words, uniform genre priors, longer plots.
DRIFT = DriftKnobs(vocabulary_shift=0.3, genre_prior_shift=1.0, text_length_scale=1.5)
STAGES = (
    "drift_flagged",
    "alert_pending",
    "alert_firing",
    "retrain_requested",
    "retrain_started",
    "run_process_started",
)
CLUSTER_STAGES = (*STAGES[:4], "run_requested", "retrain_started")
APP_VERSION = "0.0.0-bench"
RECORD_LAUNCH = """\
import json, os, sys, time
with open(sys.argv[1], "a") as f:
    f.write(json.dumps({"at": time.time(), "run_id": os.environ["TRENDING_RETRAIN_RUN_ID"],
                        "argv": sys.argv[2:]}) + "\\n")
"""


def train_bundle_with_detector(directory: Path, titles: int, backend: str = "scipy") -> Path:
    """An XGBoost bundle on synthetic titles with its drift detector, as the pipeline makes one.

    ``backend`` alibi: Alibi Detect's tests, without the semantic detector (bench_drift.py).
    """
    from trending.modelling.training import split_labelled, train_bundle
    from trending.monitoring.drift import add_drift_detector

    train, _ = split_labelled(generate_titles(titles, seed=5), test_size=0.2, seed=5)
    train_bundle(train, directory, data_snapshot_id="bench-loop-synthetic")
    extra = {"semantic": False} if backend == "alibi" else {}
    add_drift_detector(directory, train, backend=backend, **extra)  # type: ignore[arg-type]
    return directory


class Traffic(threading.Thread):
    """V1 requests of ``batch`` titles each, paced at ``rate`` requests/s (0: as fast as answered).

    With ``repeat`` the titles are sent again and again until :meth:`stop`; otherwise once.
    ``first_sent_at`` is the wall-clock time just before the first request left.
    """

    def __init__(
        self, url: str, titles: pd.DataFrame, *, batch: int, rate: float, repeat: bool
    ) -> None:
        super().__init__(name="traffic", daemon=True)
        self.url = f"{url}/v1/models/{MODEL}:predict"
        self.bodies = [
            {
                "instances": [
                    {"title_id": t, "plot": p, "reviews": list(r)}
                    for t, p, r in zip(part["title_id"], part["plot"], part["reviews"], strict=True)
                ]
            }
            for part in (titles.iloc[i : i + batch] for i in range(0, len(titles), batch))
        ]
        self.rate, self.repeat = rate, repeat
        self.first_sent_at: float | None = None
        self.started_sending = threading.Event()
        self.sent = self.errors = 0
        self._halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            begun = time.monotonic()
            while not self._halt.is_set():
                for body in self.bodies:
                    if self.rate:
                        self._halt.wait(max(0.0, begun + self.sent / self.rate - time.monotonic()))
                    if self._halt.is_set():
                        return
                    if self.first_sent_at is None:
                        self.first_sent_at = time.time()
                        self.started_sending.set()
                    self.errors += client.post(self.url, json=body).status_code != 200
                    self.sent += 1
                if not self.repeat:
                    return

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=35)


def drift_flagged(drift_url: str) -> bool:
    """Whether any detector's ``trending_drift_is_drift`` gauge is 1 right now."""
    text = httpx.get(f"{drift_url}/metrics", timeout=5).text
    return any(
        sample.value == 1.0
        for family in text_string_to_metric_families(text)
        if family.name == "trending_drift_is_drift"
        for sample in family.samples
    )


def drift_alerts(prometheus_url: str) -> list[dict[str, Any]]:
    """Prometheus's pending and firing DriftDetected alerts."""
    alerts = httpx.get(f"{prometheus_url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return [a for a in alerts if a["labels"]["alertname"] == "DriftDetected"]


def prometheus_sees_no_drift(prometheus_url: str) -> bool:
    """Prometheus has scraped both detectors' gauges and both say 0."""
    answer = httpx.get(
        f"{prometheus_url}/api/v1/query", params={"query": "trending_drift_is_drift"}, timeout=5
    ).json()["data"]["result"]
    return len(answer) == 2 and all(float(s["value"][1]) == 0.0 for s in answer)


def follow_loop(
    url: dict[str, str],
    registry: Registry,
    launches: Path,
    traffic: Traffic,
    timeout: float,
    kfp: Any = None,
) -> tuple[dict[str, float], int]:
    """Each stage's wall-clock time, and the drifted requests sent when the drift gauge turned 1.

    Polls every 0.2 s until the launched run has recorded itself (``kfp``: until the recording
    KFP endpoint has the run's request and the trigger its run id).
    """
    stages = STAGES if kfp is None else CLUSTER_STAGES
    seen: dict[str, float] = {}
    sent_when_flagged = 0
    deadline = time.monotonic() + timeout
    while len(seen) < len(stages):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the loop did not close in {timeout:.0f} s; stages seen: {seen}")
        now = time.time()
        if "drift_flagged" not in seen and drift_flagged(url["drift"]):
            seen["drift_flagged"], sent_when_flagged = now, traffic.sent
        alerts = drift_alerts(url["prometheus"])
        if alerts and "alert_pending" not in seen:
            seen["alert_pending"] = min(
                datetime.fromisoformat(a["activeAt"]) for a in alerts
            ).timestamp()
        if "alert_firing" not in seen and any(a["state"] == "firing" for a in alerts):
            seen["alert_firing"] = now
        for event in registry.events():
            if event.kind in stages and event.kind not in seen:
                seen[event.kind] = event.at.timestamp()
        if kfp is not None and "run_requested" not in seen and kfp.recorded("POST", "/runs"):
            seen["run_requested"] = now
        if kfp is None and launches.is_file() and launches.read_text():
            seen["run_process_started"] = json.loads(launches.read_text().splitlines()[0])["at"]
        time.sleep(0.2)
    return seen, sent_when_flagged


def one_repeat(
    args: argparse.Namespace, bundle: Path, binaries: dict[str, str], work: Path
) -> dict[str, Any]:
    """Start every process, calm window, drifted traffic, follow the loop; stop everything."""
    token_file = work / "trigger-token"
    token_file.write_text(secrets.token_urlsafe(24) + "\n")
    recorder, launches = work / "record_launch.py", work / "launches.jsonl"
    recorder.write_text(RECORD_LAUNCH)
    registry_uri = (work / "registry").resolve().as_uri()
    registry = Registry.from_uri(registry_uri, MODEL)
    cluster = args.profile == "cluster"
    with ExitStack() as stack:
        if cluster:
            from fakes.kfp_api import FakeKfpApi

            kfp = stack.enter_context(FakeKfpApi())
            kfp.upload("continuous-training", APP_VERSION)
            launcher = {"launcher": "kfp", "kfp_host": kfp.url, "kfp_pipeline_version": APP_VERSION}
        else:
            kfp = None
            launcher = {
                "launcher": "local",
                "command": shlex.join([sys.executable, str(recorder), str(launches)]),
            }
        drift = stack.enter_context(
            running_service(
                "serving.drift",
                flags(
                    bundle=bundle,
                    model_name=MODEL,
                    window_size=args.window,
                    interval=args.drift_interval,
                    port=0,
                ),
                work / "drift.log",
            )
        )
        trigger = stack.enter_context(
            running_service(
                "serving.trigger",
                flags(
                    token_file=token_file,
                    registry_uri=registry_uri,
                    model_name=MODEL,
                    cooldown_seconds=3600,
                    **launcher,
                    port=0,
                ),
                work / "trigger.log",
            )
        )
        predictor = stack.enter_context(
            running_service(
                "serving.predictor",
                flags(
                    model_name=MODEL,
                    bundle_dir=bundle,
                    payload_log_url=f"{drift.url}/",
                    http_port=0,
                    grpc_port=0,
                ),
                work / "predictor.log",
                ready_path=f"/v2/models/{MODEL}/ready",
            )
        )
        scraped = {"drift": drift, "trigger": trigger, "predictor": predictor}
        monitoring = stack.enter_context(
            running_monitoring(
                binaries,
                {job: service.address for job, service in scraped.items()},
                token_file,
                work,
                drift_alert_for=args.alert_for,
                interval="5s",
                monitoring_dir=MONITORING,
            )
        )
        url = {name: service.url for name, service in {**scraped, **monitoring}.items()}

        calm = Traffic(
            url["predictor"], generate_titles(args.window, seed=21), batch=25, rate=0, repeat=False
        )
        calm.run()
        scored = wait_until(
            "the drift service to score a full calm window",
            lambda: [
                r
                for r in httpx.get(f"{url['drift']}/drift", timeout=5).json()
                if r["window_size"] >= args.window and len(r["detectors"]) == 2
            ],
            timeout=args.drift_interval + 60,
        )
        if scored[0]["is_drift"]:
            raise RuntimeError(f"the calm window is already flagged as drift: {scored}")
        wait_until(
            "Prometheus to scrape 'no drift'",
            lambda: prometheus_sees_no_drift(url["prometheus"]),
            timeout=60,
        )

        drifted = generate_titles(args.window, seed=22, drift=DRIFT)
        traffic = Traffic(url["predictor"], drifted, batch=1, rate=args.rate, repeat=True)
        traffic.start()
        stack.callback(traffic.stop)
        traffic.started_sending.wait(timeout=30)
        assert traffic.first_sent_at is not None
        seen, sent_when_flagged = follow_loop(url, registry, launches, traffic, args.timeout, kfp)
        traffic.stop()
    stages = CLUSTER_STAGES if cluster else STAGES
    started = seen["retrain_started"] - traffic.first_sent_at
    outcome = {
        "seconds_after_injection": {k: round(seen[k] - traffic.first_sent_at, 2) for k in stages},
        "stage_seconds": {
            stage: round(seen[stage] - (seen[stages[i - 1]] if i else traffic.first_sent_at), 2)
            for i, stage in enumerate(stages)
        },
        "injection_to_retrain_started_seconds": round(started, 2),
        "drifted_requests_when_flagged": sent_when_flagged,
        "drifted_requests_sent": traffic.sent,
        "request_errors": calm.errors + traffic.errors,
    }
    if kfp is None:
        outcome["launched"] = json.loads(launches.read_text().splitlines()[0])["argv"]
    else:
        (run,) = kfp.recorded("POST", "/runs")
        outcome["injection_to_run_requested_seconds"] = round(
            seen["run_requested"] - traffic.first_sent_at, 2
        )
        outcome["run_parameters"] = run.body["runtime_config"]["parameters"]
    return outcome


def _versions(binaries: dict[str, str]) -> dict[str, str]:
    return {
        name: subprocess.run(
            [path, "--version"], capture_output=True, text=True, check=False
        ).stdout.splitlines()[0]
        for name, path in binaries.items()
    }


def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--rate", type=float, default=20.0, help="drifted requests per second")
    parser.add_argument("--window", type=int, default=1000, help="drift window (service default)")
    parser.add_argument("--drift_interval", type=float, default=10.0, help="drift scoring, s")
    parser.add_argument("--alert_for", default="5s", help="DriftDetected's `for` (5m shipped)")
    parser.add_argument("--train_titles", type=int, default=1500)
    parser.add_argument("--timeout", type=float, default=300.0, help="per repeat, seconds")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--profile",
        choices=("local", "cluster"),
        default="local",
        help="cluster: Alibi backend and the kfp launcher (merged into loop.json under 'cluster')",
    )
    args = parser.parse_args()
    cluster = args.profile == "cluster"
    stages = CLUSTER_STAGES if cluster else STAGES

    binaries = find_monitoring_binaries()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    work = Path(tempfile.mkdtemp(prefix="bench-loop-"))
    print(f"processes' logs and state: {work}", flush=True)
    backend = "alibi" if cluster else "scipy"
    bundle = train_bundle_with_detector(work / "bundle", args.train_titles, backend)
    runs = []
    for i in range(args.repeats):
        (work / f"run-{i}").mkdir()
        runs.append(one_repeat(args, bundle, binaries, work / f"run-{i}"))
        print(json.dumps(runs[-1]["seconds_after_injection"]), flush=True)
    rewired = yaml.safe_load((work / "run-0" / "alertmanager.yml").read_text())
    totals = [r["injection_to_retrain_started_seconds"] for r in runs]
    result = {
        "benchmark": "loop",
        "command": shlex.join(["python", *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_at_start": load_at_start,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            **_versions(binaries),
        },
        "setup": {
            "prometheus_scrape_and_evaluation_interval": "5s",
            "drift_detected_for": f"{args.alert_for} (shipped rule: 5m)",
            "alertmanager_retrain_route": {
                k: v
                for k, v in rewired["route"]["routes"][0].items()
                if k in ("group_wait", "group_interval", "repeat_interval")
            },
            "drift_window": args.window,
            "drift_scoring_interval_seconds": args.drift_interval,
            "drifted_requests_per_second": args.rate,
            "titles_per_request": 1,
            "drift_knobs": vars(DRIFT),
            "drift_backend": backend + (" (semantic MMD off)" if cluster else ""),
            "launcher": (
                "KfpPipelineLauncher (--launcher kfp): python -m cli pipeline start, kfp.Client "
                "-> a recording KFP v2beta1 endpoint (tests/fakes/kfp_api.py)"
                if cluster
                else "LocalCommandLauncher (--launcher local) with --command = a script that "
                "records the launch: a real subprocess, not the continuous-training pipeline"
            ),
            "processes": "predictor (payload log) -> drift service -> Prometheus -> "
            "Alertmanager -> trigger -> launcher, all on loopback, fresh per repeat",
        },
        "goal_seconds": GOAL_SECONDS,
        "repeats": runs,
        "median_seconds_after_injection": {
            stage: round(statistics.median(r["seconds_after_injection"][stage] for r in runs), 2)
            for stage in stages
        },
        "median_injection_to_retrain_started_seconds": round(statistics.median(totals), 2),
        "max_injection_to_retrain_started_seconds": max(totals),
    }
    if cluster:
        requested = [r["injection_to_run_requested_seconds"] for r in runs]
        result["median_injection_to_run_requested_seconds"] = round(statistics.median(requested), 2)
    # Merge: each profile replaces only its own keys (the local profile's at the top level).
    args.output.parent.mkdir(parents=True, exist_ok=True)
    merged = json.loads(args.output.read_text()) if args.output.is_file() else {}
    if cluster:
        merged["cluster"] = result
    else:
        merged.update(result)
    args.output.write_text(json.dumps(merged, indent=2) + "\n")
    print(f"median {result['median_injection_to_retrain_started_seconds']} s -> {args.output}")
    return result


if __name__ == "__main__":
    main()
