"""Run every ``benchmarks/bench_*.py`` (or the named ones); each writes benchmarks/results/<name>.json."""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path


def main(names: list[str]) -> int:
    """Run the benchmarks called ``names`` (all when empty); return the number that failed."""
    available = sorted(
        p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py")
    )
    unknown = sorted(set(names) - set(available))
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {available}", file=sys.stderr)
        return 2
    failed = 0
    for name in names or available:
        print(f"== {name}", flush=True)
        start = time.perf_counter()
        # Each benchmark's own flags keep their defaults here.
        sys.argv = [f"benchmarks/bench_{name}.py"]
        try:
            importlib.import_module(f"benchmarks.bench_{name}").main()
        except Exception as exc:  # one broken benchmark must not hide the others' numbers
            failed += 1
            print(f"!! {name} failed: {exc!r}", file=sys.stderr)
        print(f"== {name} took {time.perf_counter() - start:.1f} s", flush=True)
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
