"""The model card's evidence: summarize benchmarks/results into trending/modelling/evidence.json.

Not a benchmark (it measures nothing): it reads what the benchmarks recorded — the feature-group
ablation and the search (benchmarks/results/models.json, keys ``ablation`` and ``search``), the
staleness curves (benchmarks/results/staleness.json) — and the ModelStale threshold from the
alert rules (monitoring/rules/trending.rules.yml), and writes the package's evidence.json with
``trending.modelling.card.collect_evidence``. The file ships in the wheel and the component
image, so every model card carries it. Run it after bench_ablation, bench_search or
bench_staleness; tests/model/test_card_evidence.py fails while the file is out of date.

    .venv/bin/python -m benchmarks.evidence          # write the file
    .venv/bin/python -m benchmarks.evidence --check  # exit 1 when it is out of date
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from trending.modelling.card import collect_evidence, packaged_evidence_path

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"
RULES_FILE = ROOT / "monitoring" / "rules" / "trending.rules.yml"


def model_stale_days(rules_file: Path = RULES_FILE) -> int:
    """The ModelStale alert's threshold in days, read from its expression (``> N * 86400``).

    Raises:
        ValueError: The rules file has no ModelStale alert, or its expression has another form.
    """
    rules = yaml.safe_load(Path(rules_file).read_text())
    for group in rules.get("groups", []):
        for rule in group.get("rules", []):
            if rule.get("alert") == "ModelStale":
                match = re.search(r">\s*(\d+)\s*\*\s*86400", rule["expr"])
                if match is None:
                    raise ValueError(
                        f"{rules_file}: ModelStale's expression {rule['expr']!r} is not "
                        "'... > <days> * 86400'; update benchmarks/evidence.py to read it"
                    )
                return int(match.group(1))
    raise ValueError(f"{rules_file} has no ModelStale alert")


def build_evidence(
    results_dir: Path = RESULTS_DIR, rules_file: Path = RULES_FILE
) -> dict[str, Any]:
    """The evidence file's content, from the recorded results and the alert rules."""
    return collect_evidence(results_dir, model_stale_days=model_stale_days(rules_file))


def render(evidence: dict[str, Any]) -> str:
    """The file's text (stable: the same evidence gives the same bytes)."""
    return json.dumps(evidence, indent=2) + "\n"


def main() -> int:
    """Write (or ``--check``) the package's evidence file; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    parser.add_argument("--rules", type=Path, default=RULES_FILE)
    parser.add_argument("--output", type=Path, default=packaged_evidence_path())
    parser.add_argument(
        "--check", action="store_true", help="Exit 1 when the file differs, write nothing."
    )
    args = parser.parse_args()
    text = render(build_evidence(args.results, args.rules))
    current = args.output.read_text() if args.output.is_file() else ""
    if args.check:
        if current != text:
            print(f"{args.output} is out of date: run python -m benchmarks.evidence")
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
