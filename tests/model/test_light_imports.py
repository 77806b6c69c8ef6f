"""Serving a TF-IDF family must not import torch (it is heavy, and absent from CPU images)."""

from __future__ import annotations

import subprocess
import sys


def test_xgboost_linear_prior_and_predictor_do_not_import_torch():
    code = (
        "import sys\n"
        "import trending.models.predictor, trending.models.xgboost\n"
        "import trending.models.linear, trending.models.prior, trending.training\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
