"""Imports flow one way: trending <- components <- pipelines <- cli and trending <- serving <- cli.

Every import counts, at module level or inside a function body.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# (package, top-level modules it must never import)
RULES = [
    ("trending", {"kfp", "kserve", "cli", "components", "pipelines", "serving"}),
    ("components", {"cli", "pipelines", "serving", "kserve"}),
    ("pipelines", {"cli", "serving", "kserve"}),
    ("serving", {"kfp", "cli", "components", "pipelines"}),
]


def imported_modules(source: str) -> set[str]:
    """Top-level names of every absolute import anywhere in the source, function bodies included."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize(("package", "forbidden"), RULES, ids=[r[0] for r in RULES])
def test_no_import_against_the_direction(package, forbidden):
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = imported_modules(path.read_text()) & forbidden
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert offenders == []


def test_an_import_inside_a_function_counts():
    source = "def run():\n    from serving.canary import controller\n"
    assert "serving" in imported_modules(source)
