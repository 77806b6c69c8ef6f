"""Feast feature-store benchmark: materialization throughput and online lookups, Redis and SQLite.

Runs on the real dev file (../shared/data/tmdb-movies-dev.parquet) through the project's
ingestion when present, otherwise on 6,000 synthetic titles. Writes
benchmarks/results/features.json with the command, date, and each phase's load average, CPU
steal share and CPU seconds (this process, and Redis).

- Materialization (``TitleFeatureStore.materialize``): every title's latest row into an empty
  online store (full: the store's first write in this process); then 5 turns of the same full
  materialization and of ``FeatureStore.write_to_online_store`` over the same rows (the SDK
  write ``materialize`` used before ADR 0020), taking turns so that the other engineers' bursts
  fall on both alike, Redis emptied before each run (full_5_times_taking_turns: per path the
  median run, every run's rates, and the median ratio of CPU seconds); ``FeatureStore.materialize``
  (Feast's local engine) over the same rows; then a run after 3 titles changed (incremental:
  only they are written). On Redis (Debian's ``redis-server`` on a free loopback port) and on
  SQLite. rows_per_cpu_second counts this process's and Redis's CPU: on these shared CPUs it is
  what the rate would be with the CPUs to itself.
- Online lookups of 1 and 100 entities (``TitleFeatureStore.online``); the whole transformer
  path is benchmarks/bench_transformer.py.

    .venv/bin/python benchmarks/bench_features.py
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):  # run as a script: this repository's benchmarks/ package first
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.bench_transformer import (
    dev_titles,
    feature_repo,
    free_port,
    lookups,
    redis_ready,
    running,
)
from benchmarks.loadgen import Phase, cpu_seconds, load_average, machine, uptime

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "features.json"
LOOKUPS = 300
# Full materializations after the first: one run on these shared CPUs is not a figure.
REPEATS = 5
GOAL_ROWS_PER_SECOND = 20_000


def timed(action, pids: dict[str, int]) -> tuple[object, dict]:
    """Run ``action()``; its result and wall/CPU seconds (this process + ``pids``), load, steal."""
    cpu_before = time.process_time()
    started = time.perf_counter()
    with Phase(pids) as phase:
        result = action()
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_before + sum(phase.cpu.values())
    return result, {
        "seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "this_process_cpu_seconds": round(time.process_time() - cpu_before, 3),
        **phase.figures(),
    }


def rates(rows: int, figures: dict) -> dict:
    """Rows per wall-clock second and per CPU-second (this process + Redis) of a phase."""
    return {
        "rows_per_second": round(rows / figures["seconds"], 1),
        "rows_per_cpu_second": round(rows / figures["cpu_seconds"], 1),
    }


def interleaved(actions: dict, pids: dict[str, int], reset) -> dict:
    """Each of ``actions`` REPEATS times, taking turns (``reset()`` before each run).

    Taking turns spreads the other engineers' bursts over all of them alike: per action the
    median run (by wall-clock time) and every run's rates, and the median over the turns of
    each action's CPU seconds relative to the first action's.
    """
    runs: dict[str, list[dict]] = {name: [] for name in actions}
    for _ in range(REPEATS):
        for name, action in actions.items():
            if reset is not None:
                reset()
            rows, figures = timed(action, pids)
            runs[name].append(figures | {"rows_written": rows, **rates(rows, figures)})
    first = next(iter(actions))
    out = {}
    for name, each in runs.items():
        by_wall = sorted(each, key=lambda r: r["seconds"])
        out[name] = {
            "median_run": by_wall[len(by_wall) // 2],
            "rows_per_second_each": [r["rows_per_second"] for r in each],
            "rows_per_cpu_second_each": [r["rows_per_cpu_second"] for r in each],
        }
        if name != first:
            ratios = sorted(
                r["cpu_seconds"] / f["cpu_seconds"] for r, f in zip(each, runs[first], strict=True)
            )
            out[name][f"cpu_seconds_relative_to_{first}_median"] = round(
                ratios[len(ratios) // 2], 2
            )
    return out


def materialization(
    store, titles, pids: dict[str, int], reset: Callable[[], object] | None = None
) -> dict:
    """Full load; full loads taking turns with Feast's SDK write; Feast's engine; 3 changes."""
    import pandas as pd

    from trending.features.store import FEATURE_VIEW

    store.write_source(titles)
    store.apply()
    rows, full = timed(store.materialize, pids)
    full |= {
        "rows_written": rows,
        **rates(rows, full),
        "goal_rows_per_second": GOAL_ROWS_PER_SECOND,
    }
    source = pd.read_parquet(store.pull_source())
    latest = source.sort_values("event_timestamp", kind="stable").drop_duplicates(
        "title_id", keep="last"
    )

    def sdk_write() -> int:
        store.store.write_to_online_store(FEATURE_VIEW, latest)
        return len(latest)

    turns = interleaved(
        {
            "materialize": lambda: store.materialize(full=True),
            "feast_write_to_online_store_same_rows": sdk_write,
        },
        pids,
        reset,
    )
    stamps = source["event_timestamp"]
    start, end = stamps.min().to_pydatetime(), stamps.max().to_pydatetime() + timedelta(seconds=1)
    _, engine = timed(lambda: store.store.materialize(start_date=start, end_date=end), pids)
    engine |= {"rows": len(titles), **rates(len(titles), engine)}
    changed = titles.copy()
    for row in (10, 200, 3000 % len(titles)):
        changed.loc[row, "plot"] = str(changed.loc[row, "plot"]) + " (revised)"
        changed.loc[row, "event_timestamp"] = changed.loc[row, "event_timestamp"] + timedelta(
            hours=1
        )
    store.write_source(changed)
    rows, incremental = timed(store.materialize, pids)
    incremental |= {"titles_changed": 3, "rows_written": rows}
    return {
        "full": full,
        f"full_{REPEATS}_times_taking_turns": turns,
        "feast_materialize_engine_same_rows": engine,
        "incremental_after_3_changes": incremental,
    }


def redis_flush(port: int) -> Callable[[], object]:
    """Empties the benchmark's Redis (its own throw-away server)."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    return client.flushdb


def main() -> dict:
    """Run the benchmark and write the results file; return the results."""
    from trending.features.store import TitleFeatureStore

    load_at_start, uptime_at_start = load_average(), uptime()
    work = Path(tempfile.mkdtemp(prefix="bench-features-"))
    redis_binary = shutil.which("redis-server")
    if redis_binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    started = time.perf_counter()
    titles, dataset = dev_titles(work)
    ingest_s = time.perf_counter() - started
    ids = titles["title_id"].tolist()
    port = free_port()
    redis_cmd = [redis_binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    results: dict = {}
    with running(redis_cmd, redis_ready(port), work / "redis.log") as redis_pid:
        for backend in ("redis", "sqlite"):
            store = TitleFeatureStore(feature_repo(work, backend, port), work / backend / "state")
            pids = {"redis": redis_pid} if backend == "redis" else {}
            # Redis is emptied before each repeated run (a stored row with a later event time
            # would be skipped); SQLite replaces rows either way.
            reset = redis_flush(port) if backend == "redis" else None
            results[backend] = {
                "materialization": materialization(store, titles, pids, reset),
                "online_lookup": {
                    f"{n}_{'entity' if n == 1 else 'entities'}": lookups(
                        store, ids, n, LOOKUPS, store.online
                    )
                    for n in (1, 100)
                },
            }
        redis_cpu = cpu_seconds(redis_pid)

    results_file = {
        "benchmark": "features",
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(load_at_start),
        "uptime_at_start": uptime_at_start,
        "uptime_at_end": uptime(),
        "dataset": dataset,
        "titles": len(titles),
        "ingest_seconds": round(ingest_s, 3),
        "notes": (
            "materialize: the latest row per title, only rows whose values changed since the "
            "last run, converted column by column into Feast's Value protobufs and written in "
            "batches by the online store class's own online_write_batch (ADR 0020). full is the "
            "store's first write in this process (client connection, module imports); "
            "full_5_times_taking_turns runs it and the SDK write it replaced "
            "(feast_write_to_online_store_same_rows) in turns over the same rows, Redis emptied "
            "before each run. rows_per_cpu_second: rows over this process's + Redis's CPU "
            "seconds, i.e. the rate with the CPUs to itself; compare wall-clock rates only with "
            "the load averages next to them."
        ),
        "redis_server_cpu_seconds_total": round(redis_cpu, 3),
        **results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results_file, indent=2) + "\n")
    print(json.dumps(results_file, indent=2))
    return results_file


if __name__ == "__main__":
    main()
