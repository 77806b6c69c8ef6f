"""Serving a TF-IDF family must not import torch (it is heavy, and absent from CPU images)."""

from __future__ import annotations

import subprocess
import sys


def test_xgboost_linear_prior_and_predictor_do_not_import_torch():
    code = (
        "import sys\n"
        "import trending.modelling.families.predictor, trending.modelling.families.xgboost\n"
        "import trending.modelling.families.linear, trending.modelling.families.prior, trending.modelling.training\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
