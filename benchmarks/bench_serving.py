"""Serving latency and throughput: the KServe predictor on loopback vs the model in-process.

Run: ``.venv/bin/python benchmarks/bench_serving.py`` (see bench_registry.py for why not ``-m``).
Writes ``benchmarks/results/serving.json`` with the command, date and machine load.

- XGBoost bundle trained on synthetic titles (trending.synthetic + trending.training, default
  model params), served by ``python -m serving.predictor`` with 1 worker.
- Constant-rate (open-loop) single-instance V1 requests: latency is measured from each request's
  scheduled send time, so a stalled server cannot hide queueing (no coordinated omission).
- Saturation: closed loop, N keep-alive connections, as fast as the server answers.
- Server overhead: HTTP p50 minus the in-process p50 of the same work (validation, featurize,
  score, thresholds) for the same inputs.
- The load generator is a minimal asyncio HTTP/1.1 client (pre-built requests, keep-alive) so
  that it takes as little of the 2 CPUs as possible from the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from trending.processes import free_port, running_service

RESULTS = Path(__file__).resolve().parent / "results" / "serving.json"
MODEL = "genre-classifier"


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 3),
        "p90_ms": round(percentile(ms, 90), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": round(max(ms), 3) if ms else float("nan"),
    }


def train_xgboost_bundle(directory: Path, titles: int) -> Path:
    from trending.synthetic import generate_titles
    from trending.training import split_labelled, train_bundle

    frame = generate_titles(titles, seed=5)
    train, _ = split_labelled(frame, test_size=0.2, seed=5)
    train_bundle(train, directory, data_snapshot_id="bench-synthetic")
    return directory


def sample_plots(n: int) -> list[str]:
    from trending.synthetic import generate_titles

    return generate_titles(n, seed=99)["plot"].tolist()


def in_process(bundle: Path, plots: list[str], repeat: int) -> dict[str, object]:
    """The server's per-request work without HTTP: validate, featurize, score, threshold."""
    from trending.evaluation import apply_thresholds
    from trending.features import model_input_text
    from trending.inference import parse_v1_body, prediction_rows
    from trending.models import GenrePredictor

    predictor = GenrePredictor.from_bundle(bundle)

    def once(body: dict) -> list[dict]:
        titles = parse_v1_body(body)
        scores = predictor.scores([model_input_text(t.plot, t.reviews) for t in titles])
        chosen = apply_thresholds(scores, predictor.manifest.thresholds)
        return prediction_rows(titles, scores, chosen, predictor.genres)

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


def build_requests(port: int, plots: list[str]) -> list[bytes]:
    out = []
    for plot in plots:
        body = json.dumps({"instances": [plot]}).encode()
        head = (
            f"POST /v1/models/{MODEL}:predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        out.append(head + body)
    return out


class Connection:
    """One keep-alive HTTP/1.1 connection that sends a prepared request and reads the answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def request(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def constant_rate(port: int, requests: list[bytes], rate: float, seconds: float, conns: int):
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(conns):
        pool.put_nowait(await Connection.open(port))
    latencies: list[float] = []
    errors = 0
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    total = int(rate * seconds)

    async def one(i: int, scheduled: float) -> None:
        nonlocal errors
        conn = await pool.get()
        try:
            status = await conn.request(requests[i % len(requests)])
        finally:
            pool.put_nowait(conn)
        latencies.append(loop.time() - scheduled)
        errors += status != 200

    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - start
    while not pool.empty():
        pool.get_nowait().close()
    return latencies, errors, total / elapsed


async def saturate(port: int, requests: list[bytes], seconds: float, conns: int):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    done = errors = 0

    async def worker(offset: int) -> None:
        nonlocal done, errors
        conn = await Connection.open(port)
        i = offset
        while loop.time() < deadline:
            errors += await conn.request(requests[i % len(requests)]) != 200
            done += 1
            i += conns
        conn.close()

    start = loop.time()
    await asyncio.gather(*(worker(k) for k in range(conns)))
    return done / (loop.time() - start), errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle_dir", type=Path, help="Use this bundle instead of training one.")
    parser.add_argument("--train_titles", type=int, default=1500)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--saturate_seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    t0 = time.perf_counter()
    bundle = args.bundle_dir or train_xgboost_bundle(work / "bundle", args.train_titles)
    train_s = time.perf_counter() - t0
    plots = sample_plots(512)
    local = in_process(bundle, plots, repeat=1000)

    port = free_port()
    server_args = [
        "--model_name", MODEL, "--bundle_dir", str(bundle), "--http_port", str(port),
        "--grpc_port", str(free_port()), "--workers", "1", "--enable_latency_logging", "false",
    ]  # fmt: skip
    ready = f"http://127.0.0.1:{port}/v2/models/{MODEL}/ready"
    requests = build_requests(port, plots)
    with running_service("serving.predictor", server_args, ready, work / "predictor.log"):
        asyncio.run(saturate(port, requests, 2.0, 4))  # warm-up
        lat, rate_errors, achieved = asyncio.run(
            constant_rate(port, requests, args.rate, args.seconds, args.connections)
        )
        saturated_rps, sat_errors = asyncio.run(
            saturate(port, requests, args.saturate_seconds, args.connections)
        )
    http = summary_ms(lat)
    result = {
        "benchmark": "serving",
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "notes": (
            "XGBoost bundle (default params) trained on synthetic titles; single-instance V1 "
            "requests over loopback to one KServe ModelServer worker; the load generator shares "
            "the same 2 CPUs. BERT path not measured: the 'bert' family landed during this work "
            "and no BERT bundle was trained in time (CPU-only, shared 2 cores)."
        ),
        "bundle": {"train_titles": args.train_titles, "train_seconds": round(train_s, 1)},
        "results": {
            "xgboost": {
                "in_process": local,
                "http_constant_rate": {
                    "target_rps": args.rate,
                    "achieved_rps": round(achieved, 1),
                    "errors": rate_errors,
                    **http,
                },
                "http_saturated": {
                    "connections": args.connections,
                    "rps": round(saturated_rps, 1),
                    "errors": sat_errors,
                },
                "server_overhead_p50_ms": round(
                    http["p50_ms"] - local["request_work"]["p50_ms"], 3
                ),
                "targets": {"p50_ms": 4, "p99_ms": 12, "saturated_rps": 500},
            },
            "bert": None,
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["results"], indent=2))
    print(f"median in-process {statistics.median(lat) * 1000:.2f} ms -> {args.output}")


if __name__ == "__main__":
    main()
