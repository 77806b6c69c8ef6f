"""docs/ml-test-score.md: every named test exists, and every claimed score is the computed one."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "ml-test-score.md"
SECTIONS = ("Data", "Model", "Infrastructure", "Monitoring")
TEST_ID = re.compile(r"`(tests/[\w/]+\.py)::(\w+)(?:\[[^\]`]*\])?`")
SCORES = {"1": 1.0, "0.5": 0.5, "0": 0.0}


@cache
def defined_tests(path: Path) -> frozenset[str]:
    """Names of the test functions a test file defines at module level or in Test classes."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            names |= {
                f"{node.name}::{f.name}"
                for f in node.body
                if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
            }
    return frozenset(n for n in names if n.split("::")[-1].startswith("test_"))


def parse_page(text: str) -> dict[str, dict]:
    """Section -> {"rows": [(number, claimed score, [(file, test)])], "claimed": score}."""
    sections: dict[str, dict] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            sections[current] = {"rows": [], "claimed": None}
        elif current and re.match(r"^\|\s*\d+\s*\|", line):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            sections[current]["rows"].append((int(cells[0]), cells[-1], TEST_ID.findall(cells[-2])))
        elif current and (
            claimed := re.match(rf"^\*\*{re.escape(current)} score: ([\d.]+)\*\*", line)
        ):
            sections[current]["claimed"] = float(claimed.group(1))
    return sections


def existing(ids: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(f, t) for f, t in ids if (ROOT / f).is_file() and t in defined_tests(ROOT / f)]


def computed_score(rows: list) -> float:
    """1 for a row naming an existing test, else what it claims, capped at 0.5 (manual)."""
    return sum(1.0 if existing(ids) else min(SCORES[claimed], 0.5) for _, claimed, ids in rows)


@pytest.fixture(scope="module")
def page() -> dict[str, dict]:
    return parse_page(PAGE.read_text())


def test_the_page_has_the_four_sections_of_seven_tests(page):
    assert [s for s in page if s in SECTIONS] == list(SECTIONS)
    for name in SECTIONS:
        assert [n for n, _, _ in page[name]["rows"]] == list(range(1, 8)), name


def test_every_named_test_exists(page):
    missing = [
        f"{name} #{n}: {f}::{t}"
        for name in SECTIONS
        for n, _, ids in page[name]["rows"]
        for f, t in ids
        if (f, t) not in existing([(f, t)])
    ]
    assert missing == [], f"docs/ml-test-score.md names tests that do not exist: {missing}"


def test_claimed_scores_are_the_computed_ones_and_at_least_5_automated(page):
    for name in SECTIONS:
        rows = page[name]["rows"]
        for n, claimed, ids in rows:
            assert claimed in SCORES, f"{name} #{n}: score {claimed!r} is not 1, 0.5 or 0"
            if claimed == "1":
                assert existing(ids), f"{name} #{n} claims 1 (automated) but names no existing test"
        assert page[name]["claimed"] == computed_score(rows), name
        automated = sum(1 for _, claimed, ids in rows if claimed == "1" and existing(ids))
        assert automated >= 5, f"{name}: only {automated} automated tests"
    final = re.search(r"\*\*Final score: ([\d.]+)\*\*", PAGE.read_text())
    assert final and float(final.group(1)) == min(computed_score(page[s]["rows"]) for s in SECTIONS)


def test_a_missing_test_is_caught_and_costs_its_point():
    kept = "`tests/data/test_schema.py::test_clean_batch_is_accepted_whole`"
    gone = "`tests/data/test_schema.py::test_that_was_renamed`"
    page = f"## Data\n| 1 | Schema | x | {kept}, {gone} | 1 |\n| 2 | Other | x | {gone} | 1 |\n"
    rows = parse_page(page)["Data"]["rows"]
    assert existing(rows[0][2]) == [
        ("tests/data/test_schema.py", "test_clean_batch_is_accepted_whole")
    ]
    assert existing(rows[1][2]) == [] and computed_score(rows) == 1.5
