"""Registry latency: register, promote, rollback and load on a local folder and on S3 (moto).

Run: ``.venv/bin/python benchmarks/bench_registry.py`` (``-m benchmarks.…`` needs a
``benchmarks/__init__.py``: pyarrow 17 installs a top-level ``benchmarks`` package that wins).
Writes ``benchmarks/results/registry.json``. S3 here is moto_server on loopback, so the numbers
show the registry's own request pattern and overhead, not a real MinIO's disk or network.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from trending.modelling.bundle import BundleManifest, write_manifest
from trending.registry import Registry
from trending.registry.objectstore import (
    LocalObjectStore,
    ObjectStore,
    S3ObjectStore,
    make_minio_client,
)

RESULTS = Path(__file__).resolve().parent / "results" / "registry.json"


def make_bundle(root: Path, payload_bytes: int) -> Path:
    bundle = root / f"bundle-{uuid.uuid4().hex[:8]}"
    (bundle / "drift").mkdir(parents=True)
    (bundle / "model.bin").write_bytes(os.urandom(payload_bytes))
    (bundle / "featurizer.json").write_text('{"max_features": 20000}')
    (bundle / "drift" / "detector.bin").write_bytes(os.urandom(4096))
    write_manifest(
        bundle,
        BundleManifest(
            model_family="xgboost",
            genres=["Comedy", "Drama", "Horror"],
            thresholds=[0.5, 0.5, 0.5],
            data_snapshot_id="bench",
        ),
    )
    return bundle


@contextmanager
def moto_store() -> Iterator[ObjectStore]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        client = make_minio_client(f"http://{host}:{port}", "bench", "bench")
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        client.make_bucket(bucket)
        yield S3ObjectStore(bucket, "registry", client=client)
    finally:
        server.stop()


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000.0


def summarize(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "n": len(samples),
        "median_ms": round(statistics.median(samples), 2),
        "p95_ms": round(p95, 2),
        "min_ms": round(ordered[0], 2),
    }


def bench_backend(store: ObjectStore, work: Path, *, reps: int, large_mb: int) -> dict[str, Any]:
    registry = Registry(store, "bench-model")
    small = [make_bundle(work, 64 * 1024) for _ in range(reps)]
    large = [make_bundle(work, large_mb * 1024 * 1024) for _ in range(max(2, reps // 4))]
    samples: dict[str, list[float]] = {}

    def run(name: str, fn: Callable[[], Any]) -> Any:
        result: list[Any] = []
        samples.setdefault(name, []).append(timed(lambda: result.append(fn())))
        return result[0]

    versions = [
        run("register (64 KiB)", lambda b=b: registry.register_version(b, actor="b", reason="b"))
        for b in small
    ]
    for b in large:
        run(
            f"register ({large_mb} MiB)",
            lambda b=b: registry.register_version(b, actor="b", reason="b"),
        )
    for v in versions:
        run("promote", lambda v=v: registry.promote(v, actor="b", reason="b"))
    for _ in range(reps - 1):
        run("rollback", lambda: registry.rollback(actor="b", reason="b"))
    for i in range(reps):
        run("load production (64 KiB)", lambda i=i: registry.download("production", work / f"s{i}"))
    large_version = registry.list_versions()[-1].version
    for i in range(len(large)):
        run(
            f"load by number ({large_mb} MiB)",
            lambda i=i: registry.download(large_version, work / f"l{i}"),
        )
    for _ in range(reps):
        run("resolve alias", lambda: registry.resolve("production"))
    return {name: summarize(values) for name, values in samples.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=12, help="Repetitions per small operation.")
    parser.add_argument("--large-mb", type=int, default=32, help="Size of the large bundle file.")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-registry-") as tmp:
        work = Path(tmp)
        local = LocalObjectStore(work / "registry")
        results["local"] = bench_backend(
            local, work / "local", reps=args.reps, large_mb=args.large_mb
        )
        with moto_store() as s3:
            results["s3 (moto_server, loopback)"] = bench_backend(
                s3, work / "s3", reps=args.reps, large_mb=args.large_mb
            )

    table = Table("backend", "operation", "n", "median ms", "p95 ms", "min ms")
    for backend, ops in results.items():
        for op, s in ops.items():
            table.add_row(
                backend, op, str(s["n"]), f"{s['median_ms']:.1f}", f"{s['p95_ms']:.1f}",
                f"{s['min_ms']:.1f}",
            )  # fmt: skip
    Console(width=120).print(table)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "registry",
        "command": shlex.join([Path(sys.executable).name, *sys.orig_argv[1:]]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "packages": {p: package_version(p) for p in ("minio", "moto")},
        "notes": "register includes upload + read-back checksum verification; load includes "
        "download + verify_bundle. S3 is moto_server in-process over loopback HTTP.",
        "results": results,
    }
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
