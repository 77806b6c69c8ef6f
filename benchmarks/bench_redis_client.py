"""Feast on Redis with redis-py's C parser (hiredis, locked) against its pure-Python one, in one run.

Each turn starts two fresh processes, one as the lock installs it and one with ``hiredis``
hidden from redis-py (which then packs commands and parses replies in Python), taking turns.
Each process publishes the dev titles (synthetic when the file is missing) into its own
``redis-server``, runs 5 full materializations (``TitleFeatureStore.materialize``, Redis emptied
before each) and 200 reads of 100 entities (``TitleFeatureStore.online``), and reports the CPU
seconds of its own process: on shared CPUs that, not wall time, is the figure. Writes
benchmarks/results/redis_client.json with the medians, their ratio, the load average and the
CPU steal share.

    .venv/bin/python benchmarks/bench_redis_client.py
"""

from __future__ import annotations

import json
import shlex
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: this repository's benchmarks/ package first
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.loadgen import Phase, load_average, machine

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "redis_client.json"
TURNS = 3
MATERIALIZATIONS = 5
READS = 200
# Run in the child: hiding the module is how redis-py behaves where hiredis is not installed.
HIDE_HIREDIS = "import sys; sys.modules['hiredis'] = None\n"
CHILD = """
import json, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, {repo!r})
import redis, redis.utils
from benchmarks.bench_transformer import dev_titles, feature_repo, free_port, redis_ready, running
from trending.features.store import TitleFeatureStore

work = Path(tempfile.mkdtemp(prefix="bench-redis-client-"))
titles, _ = dev_titles(work)
ids = titles["title_id"].tolist()
port = free_port()
server = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"]
out = {{"hiredis": redis.utils.HIREDIS_AVAILABLE, "materialize_cpu_s": [], "read_100_cpu_ms": []}}
with running(server, redis_ready(port), work / "redis.log"):
    store = TitleFeatureStore(feature_repo(work, "redis", port), work / "redis" / "state")
    store.publish(titles)
    client = redis.Redis(host="127.0.0.1", port=port)
    for _ in range({materializations}):
        client.flushall()
        started = time.process_time()
        out["rows"] = store.materialize(full=True)
        out["materialize_cpu_s"].append(time.process_time() - started)
    store.online(ids[:100])
    for i in range({reads}):
        chosen = [ids[(i * 37 + k) % len(ids)] for k in range(100)]
        started = time.process_time()
        store.online(chosen)
        out["read_100_cpu_ms"].append((time.process_time() - started) * 1000)
print(json.dumps(out))
"""


def one_process(hide_hiredis: bool) -> dict:
    """The child's figures: per-materialization CPU seconds and per-read CPU milliseconds."""
    code = CHILD.format(repo=str(REPO), materializations=MATERIALIZATIONS, reads=READS)
    if hide_hiredis:
        code = HIDE_HIREDIS + code
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    if figures["hiredis"] == hide_hiredis:
        raise RuntimeError(f"redis-py's parser is not the one asked for: {figures['hiredis']=}")
    return figures


def main() -> dict:
    """Run the turns, write the results file, return the results."""
    load_at_start = load_average()
    runs: dict[str, list[dict]] = {"hiredis": [], "python_parser": []}
    with Phase() as phase:
        for _ in range(TURNS):
            runs["hiredis"].append(one_process(hide_hiredis=False))
            runs["python_parser"].append(one_process(hide_hiredis=True))
    summary = {}
    for name, each in runs.items():
        materialize = [s for run in each for s in run["materialize_cpu_s"]]
        reads = [ms for run in each for ms in run["read_100_cpu_ms"]]
        rows = each[0]["rows"]
        summary[name] = {
            "materialize_cpu_seconds_median": round(statistics.median(materialize), 4),
            "materialize_rows_per_cpu_second": round(rows / statistics.median(materialize), 1),
            "read_100_entities_cpu_ms_p50": round(statistics.median(reads), 3),
            "rows": rows,
            "runs": len(materialize),
            "reads": len(reads),
        }
    fast, slow = summary["hiredis"], summary["python_parser"]
    output = {
        "benchmark": "redis_client",
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(load_at_start),
        **phase.figures(),
        "what": (
            f"{TURNS} turns of two processes each (hiredis, then hiredis hidden), each with "
            f"{MATERIALIZATIONS} full materializations of the dev titles into its own Redis and "
            f"{READS} reads of 100 entities; CPU of the benchmark's process only"
        ),
        **summary,
        "python_parser_cpu_relative_to_hiredis": {
            "materialize": round(
                slow["materialize_cpu_seconds_median"] / fast["materialize_cpu_seconds_median"], 2
            ),
            "read_100_entities": round(
                slow["read_100_entities_cpu_ms_p50"] / fast["read_100_entities_cpu_ms_p50"], 2
            ),
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(output, indent=2) + "\n")
    print(json.dumps(output["python_parser_cpu_relative_to_hiredis"]))
    print(f"-> {RESULTS}")
    return output


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"took {time.perf_counter() - started:.0f} s", file=sys.stderr)
