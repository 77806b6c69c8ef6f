"""Serving latency and throughput: the KServe predictor on loopback vs the model in-process.

Run: ``.venv/bin/python benchmarks/bench_serving.py [--family xgboost|bert]`` (see
bench_registry.py for why not ``-m``). Merges its family's entry into
``benchmarks/results/serving.json`` (other families' numbers are kept) with the command, date and
machine load.

XGBoost (``--family xgboost``, the default):

- XGBoost bundle trained on synthetic titles (trending.data.synthetic + trending.modelling.training, default
  model params), served by ``python -m serving.predictor`` with 1 worker.
- Constant-rate (open-loop) single-instance V1 requests: latency is measured from each request's
  scheduled send time, so a stalled server cannot hide queueing (no coordinated omission).
- Saturation: closed loop, N keep-alive connections, as fast as the server answers.
- Server overhead: HTTP p50 minus the in-process p50 of the same work (validation, featurize,
  score, thresholds) for the same inputs.

BERT (``--family bert``; writes ``results.bert``, or ``results.bert_torch_threads_<N>`` with
``--torch_threads N``, with its own command, date and load):

- A BERT bundle from the packaged all-MiniLM-L6-v2 weights, fine-tuned for a couple of steps
  (enough for latency: the network's cost does not depend on how well it was trained).
- Plots of exactly ``--plot_chars`` (300) characters: TMDb dev plots cut to length when
  ../shared/data/tmdb-movies-dev.parquet is present, synthetic plots otherwise.
- Latency: one plot per V1 request, one request at a time, with dynamic batching on (as served:
  a lone request waits up to ``max_batch_wait_ms`` for company) and off (``max_batch_size`` 1).
  With batching on, each HTTP request is paired with the same request's work in-process, right
  before it, so both see the same load from the other jobs on these CPUs.
- Throughput: ``--bert_connections`` concurrent single-plot requests through the predictor's
  dynamic batching (titles/s), vs ``GenrePredictor.scores`` in-process on batches of
  ``max_batch_size`` of the same plots, alternating in ``--rounds`` rounds; the ratio is given per
  round and as the median. In-process work runs on a pool thread, as the server's batcher runs
  the model. The achieved model batch size comes from ``trending_model_batch_size``.

The load generator is a minimal asyncio HTTP/1.1 client (pre-built requests, keep-alive) so
that it takes as little of the 2 CPUs as possible from the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: this repository's benchmarks/ package first
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.loadgen import (
    Connection,
    constant_rate,
    cpu_seconds,
    machine,
    machine_cpu_ticks,
    saturate,
    steal_share,
    summary_ms,
    uptime,
    v1_requests,
)
from cli.processes import running_service

RESULTS = Path(__file__).resolve().parent / "results" / "serving.json"
DEV_FILE = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tmdb-movies-dev.parquet"
)
MODEL = "genre-classifier"
# A couple of optimizer steps: the bundle is real and loads like any other, latency is the point.
# No TF-IDF blend: a 2-step BERT gets blend weight 0, and a w = 0 bundle skips the BERT forward;
# this benchmark is about the encoder's cost.
# fp32: results.bert stays the fp32 reference; ``--quantization int8`` measures the int8 variant.
BENCH_BERT = {
    "epochs": 1,
    "batch_size": 16,
    "max_steps": 2,
    "tfidf_blend": False,
    "quantization": "none",
}
# The dev-fold F1 comparison of int8 vs fp32 (``--quantization int8``): the family's default
# fine-tuning settings (max_length 192, batch 32, lr 3e-5, AdamW, early stopping) cut to one epoch
# on a subset of the dev training fold, so that it fits ~15 minutes of 2 shared CPUs; BERT alone.
DEV_FOLD_BERT = {"epochs": 1, "tfidf_blend": False, "quantization": "int8"}


def build_requests(port: int, plots: list[str]) -> list[bytes]:
    """One single-plot V1 predict request per plot."""
    return v1_requests(port, MODEL, [{"instances": [plot]} for plot in plots])


def train_xgboost_bundle(directory: Path, titles: int) -> Path:
    from trending.data.synthetic import generate_titles
    from trending.modelling.training import split_labelled, train_bundle

    frame = generate_titles(titles, seed=5)
    train, _ = split_labelled(frame, test_size=0.2, seed=5)
    train_bundle(train, directory, data_snapshot_id="bench-synthetic")
    return directory


def sample_plots(n: int) -> list[str]:
    from trending.data.synthetic import generate_titles

    return generate_titles(n, seed=99)["plot"].tolist()


def request_work(predictor) -> Callable[[dict], list[dict]]:
    """The server's per-request work without HTTP: validate, featurize, score, threshold."""
    from trending.features.featurize import model_input_text
    from trending.modelling.bundle.inference import parse_v1_body, prediction_rows
    from trending.modelling.evaluation import apply_thresholds

    def once(body: dict) -> list[dict]:
        titles = parse_v1_body(body)
        scores = predictor.scores([model_input_text(t.plot, t.reviews) for t in titles])
        chosen = apply_thresholds(scores, predictor.manifest.thresholds)
        return prediction_rows(titles, scores, chosen, predictor.genres)

    return once


def in_process(bundle: Path, plots: list[str], repeat: int) -> dict[str, object]:
    """The server's per-request work without HTTP, one title and 64 titles at a time."""
    from trending.modelling.families import GenrePredictor

    predictor = GenrePredictor.from_bundle(bundle)
    once = request_work(predictor)
    for plot in plots[:20]:
        once({"instances": [plot]})
    times, model_only = [], []
    for i in range(repeat):
        body = {"instances": [plots[i % len(plots)]]}
        start = time.perf_counter()
        once(body)
        times.append(time.perf_counter() - start)
        start = time.perf_counter()
        predictor.scores([plots[i % len(plots)]])
        model_only.append(time.perf_counter() - start)
    batch = [{"instances": plots[i : i + 64]} for i in range(0, len(plots) - 63, 64)]
    start = time.perf_counter()
    n = 0
    for body in batch:
        n += len(once(body))
    batched_rate = n / (time.perf_counter() - start)
    return {
        "request_work": summary_ms(times),
        "model_scores_only": summary_ms(model_only),
        "batched_64_titles_per_s": round(batched_rate, 1),
    }


def predictor_args(bundle: Path, *extra: str) -> list[str]:
    """Flags of a predictor serving ``bundle`` on free ports (``running_service`` reports them)."""
    return [
        "--model_name", MODEL, "--bundle_dir", str(bundle), "--http_port", "0", "--grpc_port", "0",
        "--workers", "1", "--enable_latency_logging", "false", *extra,
    ]  # fmt: skip


def run_xgboost(args: argparse.Namespace, work: Path) -> tuple[dict[str, object], dict]:
    """The XGBoost section: (top-level run fields, results entry)."""
    train_titles = args.train_titles or 1500
    t0 = time.perf_counter()
    bundle = args.bundle_dir or train_xgboost_bundle(work / "bundle", train_titles)
    train_s = time.perf_counter() - t0
    plots = sample_plots(512)
    local = in_process(bundle, plots, repeat=1000)

    ready = f"/v2/models/{MODEL}/ready"
    log = work / "predictor.log"
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    with running_service(
        "serving.predictor", predictor_args(bundle), log, ready_path=ready
    ) as server:
        port = server.ports["http"]
        requests = build_requests(port, plots)
        asyncio.run(saturate(port, requests, 2.0, 4))  # warm-up
        cpu_before, ticks_before = cpu_seconds(server.pid), machine_cpu_ticks()
        lat, rate_errors, achieved = asyncio.run(
            constant_rate(port, requests, args.rate, args.seconds, args.connections)
        )
        cpu_rate = cpu_seconds(server.pid) - cpu_before
        steal_rate = steal_share(ticks_before, machine_cpu_ticks())
        cpu_before, ticks_before = cpu_seconds(server.pid), machine_cpu_ticks()
        saturated_rps, sat_errors = asyncio.run(
            saturate(port, requests, args.saturate_seconds, args.connections)
        )
        cpu_saturated = cpu_seconds(server.pid) - cpu_before
        steal_saturated = steal_share(ticks_before, machine_cpu_ticks())
    http = summary_ms(lat)
    run = {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(load_at_start),
        "notes": (
            "XGBoost bundle (default params) trained on synthetic titles; single-instance V1 "
            "requests over loopback to one KServe ModelServer worker (its default flags: no "
            "per-request log lines, uvloop); the load generator shares the same 2 CPUs. The "
            "constant-rate generator sends on schedule (it yields to its event loop for the last "
            "~1 ms before each send; a plain asyncio sleep sent 0.7 ms late at the median, which "
            "counted as latency). server_cpu_ms_per_request: the server process's user + system "
            "CPU over each phase / requests answered. cpu_steal_share: the share of the machine's "
            "CPU time the hypervisor gave to other VMs during the phase (/proc/stat steal; "
            "tails grow with it). BERT: results.bert (its own run, command and load)."
        ),
        "bundle": {"train_titles": train_titles, "train_seconds": round(train_s, 1)},
    }
    entry = {
        "in_process": local,
        "http_constant_rate": {
            "target_rps": args.rate,
            "achieved_rps": round(achieved, 1),
            "errors": rate_errors,
            **http,
            "server_cpu_ms_per_request": round(cpu_rate * 1000 / len(lat), 3),
            "cpu_steal_share": steal_rate,
        },
        "http_saturated": {
            "connections": args.connections,
            "rps": round(saturated_rps, 1),
            "errors": sat_errors,
            "server_cpu_ms_per_request": round(
                cpu_saturated * 1000 / (saturated_rps * args.saturate_seconds), 3
            ),
            "cpu_steal_share": steal_saturated,
        },
        "server_overhead_p50_ms": round(http["p50_ms"] - local["request_work"]["p50_ms"], 3),
        "targets": {"p50_ms": 4, "p99_ms": 12, "saturated_rps": 500},
    }
    return run, entry


def train_bert_bundle(directory: Path, titles: int) -> Path:
    from trending.data.synthetic import generate_titles
    from trending.modelling.training import train_bundle

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    frame = generate_titles(titles, seed=5)
    train_bundle(frame, directory, family="bert", params=BENCH_BERT, data_snapshot_id="bench")
    return directory


def plots_of_length(chars: int, n: int) -> tuple[list[str], str]:
    """``n`` plots of exactly ``chars`` characters, and where they come from."""
    if DEV_FILE.is_file():
        import pandas as pd

        plots = pd.read_parquet(DEV_FILE, columns=["plot"])["plot"].astype(str).str.strip()
        source = f"{DEV_FILE.name} plots of at least {chars} characters, cut to {chars}"
    else:
        from trending.data.synthetic import generate_titles

        plots = generate_titles(4 * n, seed=99)["plot"].astype(str)
        plots = plots.groupby(plots.index // 4).agg(" ".join)  # synthetic plots are short
        source = f"synthetic plots (4 joined), cut to {chars}"
    cut = [p[:chars].rstrip() for p in plots if len(p) >= chars]
    cut = [c + "." * (chars - len(c)) for c in cut][:n]  # a cut may end in whitespace
    if len(cut) < n:
        raise SystemExit(f"only {len(cut)} plots of {chars}+ characters; need {n}")
    return cut, source


def scores_throughput(predictor, plots: list[str], batch_size: int, min_seconds: float) -> float:
    """Titles/s of ``GenrePredictor.scores`` on consecutive batches of ``batch_size`` plots."""
    batches = [plots[i : i + batch_size] for i in range(0, len(plots) - batch_size + 1, batch_size)]
    predictor.scores(batches[0])  # warm-up
    done, start, i = 0, time.perf_counter(), 0
    while time.perf_counter() - start < min_seconds or i < len(batches):
        done += len(predictor.scores(batches[i % len(batches)]))
        i += 1
    return done / (time.perf_counter() - start)


async def one_at_a_time(
    port: int, requests: list[bytes], n: int, alongside: Callable[[int], None] | None = None
) -> tuple[list[float], list[float], int]:
    """Latencies of ``n`` requests sent one after another on one keep-alive connection.

    With ``alongside``, each request is paired with an in-process call ``alongside(i)`` right
    before it, timed too, so both see the same machine load (other jobs share these CPUs).

    Returns:
        (HTTP latencies, in-process latencies (empty without ``alongside``), HTTP errors).
    """
    conn = await Connection.open(port)
    latencies, local, errors = [], [], 0
    try:
        for i in range(n):
            if alongside is not None:
                start = time.perf_counter()
                alongside(i)
                local.append(time.perf_counter() - start)
            start = time.perf_counter()
            errors += await conn.request(requests[i % len(requests)]) != 200
            latencies.append(time.perf_counter() - start)
    finally:
        conn.close()
    return latencies, local, errors


def model_calls(url: str) -> tuple[float, float]:
    """(model calls, titles in them) from the predictor's ``trending_model_batch_size``."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    calls = titles = 0.0
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for sample in family.samples:
            if sample.name == "trending_model_batch_size_count":
                calls += sample.value
            elif sample.name == "trending_model_batch_size_sum":
                titles += sample.value
    return calls, titles


def measure_bert_server(
    bundle: Path,
    flags: list[str],
    plots: list[str],
    args: argparse.Namespace,
    log: Path,
    *,
    alongside: Callable[[int], None] | None = None,
    in_process_rate: Callable[[], float] | None = None,
) -> tuple[dict, list[float]]:
    """Serve ``bundle`` with ``flags``; single-plot latency, then saturated throughput.

    ``alongside`` (one in-process request) is timed right before each HTTP request;
    ``in_process_rate`` runs before each of ``args.rounds`` saturation rounds (one round without
    it). Returns the served figures and the paired in-process latencies.
    """
    server = predictor_args(bundle, *flags)
    ready = f"/v2/models/{MODEL}/ready"
    with running_service("serving.predictor", server, log, ready_path=ready) as predictor:
        port, url = predictor.ports["http"], predictor.url
        requests = build_requests(port, plots)
        # Warm-up, both sides: the first calls of a fresh process are several times slower.
        asyncio.run(one_at_a_time(port, requests, 50, alongside))
        asyncio.run(saturate(port, requests, 5.0, args.bert_connections))
        if in_process_rate:
            in_process_rate()
        latencies, local, errors = asyncio.run(
            one_at_a_time(port, requests, args.latency_requests, alongside)
        )
        rounds = []
        for _ in range(args.rounds if in_process_rate else 1):
            row = (
                {"in_process_titles_per_s": round(in_process_rate(), 2)} if in_process_rate else {}
            )
            calls0, titles0 = model_calls(url)
            rps, sat_errors = asyncio.run(
                saturate(port, requests, args.saturate_seconds, args.bert_connections)
            )
            calls1, titles1 = model_calls(url)
            row["served_titles_per_s"] = round(rps, 2)
            row["errors"] = sat_errors
            row["mean_model_batch"] = round((titles1 - titles0) / max(calls1 - calls0, 1), 1)
            rounds.append(row)
    return {
        "single_plot_v1": {"errors": errors, **summary_ms(latencies)},
        "saturated": rounds,
    }, local


def run_bert(args: argparse.Namespace, work: Path) -> dict:
    """The BERT section: single-plot latency and batched throughput, served vs in-process.

    In-process and served measurements alternate (per request for latency, per round for
    throughput) so that both see the same load from the other jobs on the machine.
    """
    from trending.modelling.families import GenrePredictor

    load_at_start = [round(x, 2) for x in os.getloadavg()]
    uptime_at_start = uptime()
    bundle_note = (
        f"packaged all-MiniLM-L6-v2 fine-tuned for {BENCH_BERT['max_steps']} steps on synthetic "
        "titles (latency does not depend on training)"
        if not args.bundle_dir
        else f"{args.bundle_dir.name} ({getattr(args, 'bundle_note', 'given bundle')})"
    )
    if args.torch_threads:  # the server reads OMP_NUM_THREADS; this process is set directly
        import torch

        os.environ["OMP_NUM_THREADS"] = str(args.torch_threads)
        torch.set_num_threads(args.torch_threads)
    train_titles = args.train_titles or 200
    t0 = time.perf_counter()
    bundle = args.bundle_dir or train_bert_bundle(work / "bert-bundle", train_titles)
    train_s = time.perf_counter() - t0
    plots, plot_source = plots_of_length(args.plot_chars, 256)
    batch, wait = args.max_batch_size, args.max_batch_wait_ms
    predictor = GenrePredictor.from_bundle(bundle)
    variant = "int8 encoder" if getattr(predictor.model, "running", "none") == "int8" else "fp32"
    once = request_work(predictor)
    # In-process calls run on a worker thread, as the server's batcher runs the model: on this
    # machine torch in the main thread was up to 2x slower than in a pool thread at times.
    worker = ThreadPoolExecutor(1, thread_name_prefix="in-process")

    on, local = measure_bert_server(
        bundle,
        ["--max_batch_size", str(batch), "--max_batch_wait_ms", str(wait)],
        plots,
        args,
        work / "predictor-batching-on.log",
        alongside=lambda i: worker.submit(once, {"instances": [plots[i % len(plots)]]}).result(),
        in_process_rate=lambda: worker.submit(
            scores_throughput, predictor, plots, batch, args.saturate_seconds
        ).result(),
    )
    worker.shutdown()
    off, _ = measure_bert_server(
        bundle, ["--max_batch_size", "1"], plots, args, work / "predictor-batching-off.log"
    )
    ratios = [r["served_titles_per_s"] / r["in_process_titles_per_s"] for r in on["saturated"]]
    local_latency = summary_ms(local)
    return {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(load_at_start),
        "uptime_at_start": uptime_at_start,
        "uptime_at_end": uptime(),
        "torch_threads": args.torch_threads or "torch default (one per core)",
        "variant": variant,
        "notes": (
            f"BERT bundle: {bundle_note}, max_length 192, {variant} on CPU. One KServe "
            "ModelServer worker "
            "on loopback; the load generator and the in-process runs share the same 2 CPUs, "
            "which other jobs were also using (see the load averages). In-process and served "
            "runs alternate so both see the same load."
        ),
        "bundle": {
            "train_titles": train_titles,
            "train_seconds": round(train_s, 1),
            # 1.0 = pure BERT (the committed figures before this flag ran the forward with w = 0)
            "blend_weight": predictor.manifest.params.get("blend_weight"),
        },
        "plots": {"chars": args.plot_chars, "count": len(plots), "source": plot_source},
        "batching": {
            "max_batch_size": batch,
            "max_batch_wait_ms": wait,
            "connections": args.bert_connections,
            "seconds_per_round": args.saturate_seconds,
        },
        "in_process": {
            "single_plot_request_work": local_latency,
            "throughput": f"GenrePredictor.scores on batches of {batch} of the same plots",
            "thread": "a pool thread, as in the server (the batcher's executor)",
        },
        "http": {"batching_on": on, "batching_off": off},
        "served_vs_in_process": {
            "per_round": [round(r, 3) for r in ratios],
            "median": round(statistics.median(ratios), 3),
            "target": 0.9,
        },
        "server_overhead_p50_ms": round(
            on["single_plot_v1"]["p50_ms"] - local_latency["p50_ms"], 3
        ),
    }


def dev_fold_f1(args: argparse.Namespace, work: Path) -> tuple[Path, dict]:
    """Train BERT (int8 chosen at export) on a dev training fold; F1 of both variants on its test fold.

    Returns the bundle and its figures: the export check (validation rows) and the micro-F1 of
    the fp32 and int8 variants on ``--f1_test_titles`` titles of the held-out fold, both with the
    bundle's thresholds.
    """

    from trending.features.featurize import texts_of
    from trending.genres import GenreVocabulary
    from trending.modelling.evaluation import apply_thresholds, classification_metrics
    from trending.modelling.families.bert import BertGenreModel
    from trending.modelling.training import split_labelled, train_bundle, with_text_columns

    if not DEV_FILE.is_file():
        raise SystemExit(f"{DEV_FILE} is missing: the int8 F1 comparison runs on the dev data")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this repo's benchmarks/
    from benchmarks.bench_models import load_dev  # the dev file's genres onto the vocabulary

    titles = with_text_columns(load_dev(DEV_FILE))
    train, test = split_labelled(titles, test_size=0.2, seed=7)
    train = train.sample(min(args.f1_train_titles, len(train)), random_state=7)
    test = test.head(args.f1_test_titles)
    bundle = work / "bert-dev-int8"
    started = time.perf_counter()
    manifest = train_bundle(train, bundle, family="bert", params=DEV_FOLD_BERT, seed=7)
    train_s = time.perf_counter() - started
    texts = texts_of(test)
    y_true = GenreVocabulary(manifest.genres).encode(test["genres"])
    scores, f1 = {}, {}
    for variant in ("none", "int8"):
        model = BertGenreModel.load(bundle / "model", quantization=variant)
        scores[variant] = model.predict_proba(texts)
        chosen = apply_thresholds(scores[variant], manifest.thresholds)
        f1[variant] = classification_metrics(y_true, chosen)["micro_f1"]
    return bundle, {
        "data": f"{DEV_FILE.name}: seeded 80/20 split (seed 7); {len(train)} training titles "
        f"sampled from the training fold, the first {len(test)} titles of the held-out fold",
        "training": {
            **DEV_FOLD_BERT,
            "other_params": "the family's defaults (max_length 192, batch 32, lr 3e-5)",
            "steps_run": manifest.params.get("steps_run"),
            "seconds": round(train_s, 1),
            "why_not_the_full_fold": "5 epochs on 4,800 titles is hours of these 2 shared CPUs",
        },
        "export_check": manifest.featurizer.get("quantization_check"),
        "chosen_at_export": manifest.featurizer.get("quantization"),
        "test_micro_f1": {"fp32": round(f1["none"], 4), "int8": round(f1["int8"], 4)},
        "f1_difference_int8_minus_fp32": round(f1["int8"] - f1["none"], 4),
        "max_score_difference": round(float(np.abs(scores["int8"] - scores["none"]).max()), 4),
        "target_max_f1_loss": 0.005,
    }


def int8_vs_fp32_throughput(bundle: Path, args: argparse.Namespace) -> dict:
    """Titles/s of the int8 and fp32 variants in-process, same batches, alternating rounds."""
    from trending.modelling.families.bert import BertGenreModel

    plots, _ = plots_of_length(args.plot_chars, 256)
    models = {v: BertGenreModel.load(bundle / "model", quantization=v) for v in ("none", "int8")}
    batch = args.max_batch_size
    worker = ThreadPoolExecutor(1, thread_name_prefix="in-process")  # as the server's batcher
    rounds = []
    for _ in range(args.rounds):
        ticks = machine_cpu_ticks()
        row = {
            variant: round(
                worker.submit(
                    scores_throughput, _Scores(model), plots, batch, args.saturate_seconds
                ).result(),
                2,
            )
            for variant, model in models.items()
        }
        rounds.append(
            {
                "fp32_titles_per_s": row["none"],
                "int8_titles_per_s": row["int8"],
                "ratio": round(row["int8"] / row["none"], 3),
                "cpu_steal_share": steal_share(ticks, machine_cpu_ticks()),
            }
        )
    worker.shutdown()
    return {
        "batch_size": batch,
        "plot_chars": args.plot_chars,
        "torch_threads": torch_threads(),
        "seconds_per_variant_per_round": args.saturate_seconds,
        "per_round": rounds,
        "median_ratio": round(statistics.median(r["ratio"] for r in rounds), 3),
        "target_ratio": 2.0,
    }


class _Scores:
    """``scores`` of a bare family model, as ``scores_throughput`` calls a predictor."""

    def __init__(self, model) -> None:
        self.model = model

    def scores(self, texts: list[str]):
        return self.model.predict_proba(texts)


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def run_bert_int8(args: argparse.Namespace, work: Path) -> dict:
    """The int8 BERT: dev-fold F1 vs fp32, in-process throughput vs fp32, served as today."""
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    uptime_at_start = uptime()
    bundle, f1 = (args.bundle_dir, {}) if args.bundle_dir else dev_fold_f1(args, work)
    throughput = int8_vs_fp32_throughput(bundle, args)
    args.bundle_dir, args.bundle_note = bundle, "the dev-fold bundle above, int8 chosen at export"
    served = run_bert(args, work)
    return {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(load_at_start),
        "uptime_at_start": uptime_at_start,
        "uptime_at_end": uptime(),
        "notes": (
            "int8 dynamic quantization (torch.ao quantize_dynamic, Linear layers of the encoder, "
            "per-channel weights) of a BERT bundle trained on the dev fold; the variant is chosen "
            "at export after the check against fp32 on the training's validation rows "
            "(trending.modelling.bundle.quantization) and recorded in the manifest. Throughput: "
            "the same bundle loaded fp32 and int8 in one process, alternating rounds on the same "
            "batches. served: bench_serving's BERT measurement as for results.bert, on this "
            "bundle in the variant its export chose (served.variant)."
        ),
        "vs_fp32": {"dev_fold_f1": f1, "in_process_throughput": throughput},
        "served": served,
    }


def merge_results(path: Path, family: str, entry: dict, run: dict | None = None) -> dict:
    """Put ``entry`` under ``results[family]`` of the results file, keeping the other families.

    ``run`` (the XGBoost run's command, date, machine, ...) replaces the top-level fields; the
    other families carry their own inside their entry.
    """
    result = json.loads(path.read_text()) if path.is_file() else {"benchmark": "serving"}
    results = {**result.pop("results", {}), family: entry}
    result = {**result, **(run or {}), "results": results}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=["xgboost", "bert"], default="xgboost")
    parser.add_argument("--bundle_dir", type=Path, help="Use this bundle instead of training one.")
    parser.add_argument(
        "--train_titles", type=int, help="Synthetic titles to train on (xgboost 1500, bert 200)."
    )
    parser.add_argument("--saturate_seconds", type=float, default=10.0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    xgb = parser.add_argument_group("xgboost")
    xgb.add_argument("--rate", type=float, default=200.0)
    xgb.add_argument("--seconds", type=float, default=15.0)
    xgb.add_argument("--connections", type=int, default=8)
    bert = parser.add_argument_group("bert")
    bert.add_argument("--plot_chars", type=int, default=300)
    bert.add_argument("--latency_requests", type=int, default=200)
    bert.add_argument("--bert_connections", type=int, default=64)
    bert.add_argument("--max_batch_size", type=int, default=32, help="The predictor's flag.")
    bert.add_argument("--max_batch_wait_ms", type=float, default=5.0, help="The predictor's flag.")
    bert.add_argument("--rounds", type=int, default=5, help="Alternating throughput rounds.")
    bert.add_argument(
        "--quantization",
        choices=["none", "int8"],
        default="none",
        help="int8: train on a dev fold with int8 chosen at export, compare F1 and throughput "
        "with fp32, then serve it as for fp32 (results.bert_int8).",
    )
    bert.add_argument("--f1_train_titles", type=int, default=1500)
    bert.add_argument("--f1_test_titles", type=int, default=600)
    bert.add_argument(
        "--torch_threads",
        type=int,
        default=0,
        help="torch intra-op threads, in-process and in the server (OMP_NUM_THREADS); 0: torch's "
        "default. Results go to results.bert_torch_threads_<N>.",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    if args.family == "xgboost":
        run, entry = run_xgboost(args, work)
        merge_results(args.output, "xgboost", entry, run)
        http = entry["http_constant_rate"]
        print(json.dumps(entry, indent=2))
        print(f"p50 {http['p50_ms']} ms at {http['achieved_rps']} req/s -> {args.output}")
    elif args.quantization == "int8":
        entry = run_bert_int8(args, work)
        merge_results(args.output, "bert_int8", entry)
        print(json.dumps(entry, indent=2))
        print(f"int8/fp32 throughput {entry['vs_fp32']['in_process_throughput']['median_ratio']}")
    else:
        entry = run_bert(args, work)
        key = f"bert_torch_threads_{args.torch_threads}" if args.torch_threads else "bert"
        merge_results(args.output, key, entry)
        print(json.dumps(entry, indent=2))
        ratio = entry["served_vs_in_process"]["median"]
        print(f"served/in-process {ratio} -> {args.output} results.{key}")


if __name__ == "__main__":
    main()
