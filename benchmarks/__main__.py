"""Run every ``benchmarks/bench_*.py`` (or the named ones); each writes benchmarks/results/<name>.json.

A full run (no names: ``make bench``) then refreshes the model card's packaged evidence
(``python -m benchmarks.evidence``), so the new results reach every card; a run of named
benchmarks leaves that file alone.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path


def main(names: list[str]) -> int:
    """Run the benchmarks called ``names`` (all when empty); return the number that failed.

    With no names, the packaged evidence is refreshed afterwards (a failure there counts as one).
    """
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
    if not names:
        failed += refresh_evidence()
    return failed


def refresh_evidence() -> int:
    """Rewrite the package's evidence.json from the results just written; 1 when that failed."""
    from benchmarks import evidence

    print("== evidence (python -m benchmarks.evidence)", flush=True)
    sys.argv = ["benchmarks/evidence.py"]
    try:
        code = evidence.main()
    except Exception as exc:  # e.g. the ModelStale rule changed its form: say so, keep the numbers
        print(f"!! evidence failed: {exc!r}", file=sys.stderr)
        return 1
    if code:
        print(f"!! evidence failed: exit code {code}", file=sys.stderr)
    return int(code != 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
