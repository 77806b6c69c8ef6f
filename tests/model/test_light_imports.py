"""Serving a TF-IDF family must not import torch (it is heavy, and absent from CPU images)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.tools  # a fresh Python process
def test_xgboost_linear_prior_and_predictor_do_not_import_torch():
    code = (
        "import sys\n"
        "import trending.modelling.families.predictor, trending.modelling.families.xgboost\n"
        "import trending.modelling.families.linear, trending.modelling.families.prior, trending.modelling.training\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def _component_imports() -> dict[str, list[str]]:
    """Each component module -> the import statements its step runs (module level and body)."""
    import ast
    from pathlib import Path

    components = Path(__file__).resolve().parents[2] / "components"
    found = {}
    for path in sorted(components.glob("*.py")):
        if path.stem in ("__init__", "image"):
            continue
        tree = ast.parse(path.read_text())
        statements = [
            ast.unparse(node)
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            and not (isinstance(node, ast.ImportFrom) and node.module == "__future__")
        ]
        found[path.stem] = statements
    return found


@pytest.mark.tools  # a fresh Python process
def test_every_component_step_imports_no_torch():
    """A step runs kfp's executor and its component's imports; only BERT training needs torch.

    The BERT family is imported inside the training and evaluation code when the family is
    "bert", so even train_model and evaluate stay torch-free until a BERT bundle is used.
    """
    steps = _component_imports()
    assert {"ingest", "validate", "snapshot", "gate", "register", "train_model"} <= set(steps)
    code = "import sys\nimport kfp.dsl.executor_main\n" + "\n".join(
        f"{statement}\nprint({name!r}, 'torch' in sys.modules, 'transformers' in sys.modules)"
        for name, statements in steps.items()
        for statement in ["\n".join(statements) or "pass"]
    )
    env = {**__import__("os").environ, "_KFP_RUNTIME": "true"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    heavy = [line for line in out.stdout.splitlines() if "True" in line]
    assert heavy == []
    assert len(out.stdout.splitlines()) == len(steps)
