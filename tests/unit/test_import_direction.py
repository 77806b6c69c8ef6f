"""trending <- components <- pipelines and trending <- serving; never the other way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# (package, top-level modules it must never import)
RULES = [
    ("trending", {"kfp", "kserve", "components", "pipelines", "serving"}),
    ("components", {"pipelines", "serving", "kserve"}),
    ("serving", {"kfp", "components", "pipelines"}),
]
# The CLI is the one place that drives adapters; it imports them inside command bodies only.
CLI = ROOT / "trending" / "cli"


def imported_modules(path: Path, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize(("package", "forbidden"), RULES, ids=[r[0] for r in RULES])
def test_no_import_against_the_direction(package, forbidden):
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        in_cli = CLI in path.parents
        bad = imported_modules(path, top_level_only=in_cli) & forbidden
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert offenders == []
