"""Model-test fixtures: candidates trained once per session on synthetic titles, report builders."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from small_params import TEST_XGBOOST

from trending.modelling.evaluation import EvaluationReport
from trending.modelling.training import evaluate_candidate, split_labelled, train_candidates


@pytest.fixture(scope="session")
def split(titles) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) of the session's synthetic titles."""
    return split_labelled(titles, test_size=0.25, seed=5)


@pytest.fixture(scope="session")
def candidates(tmp_path_factory: pytest.TempPathFactory, split) -> dict[str, Path]:
    """XGBoost and both baselines trained on the same rows."""
    train, _ = split
    return train_candidates(
        train,
        tmp_path_factory.mktemp("candidates"),
        families=("xgboost", "linear", "prior"),
        params={"xgboost": TEST_XGBOOST},
        data_snapshot_id="snap-test",
    )


@pytest.fixture(scope="session")
def reports(
    tmp_path_factory: pytest.TempPathFactory, candidates, split
) -> dict[str, EvaluationReport]:
    """Every candidate evaluated on the same test rows; XGBoost's report and plots written.

    The tests read only XGBoost's plots; drawing the baselines' too cost a second of CPU.
    """
    _, test = split
    out = tmp_path_factory.mktemp("reports")
    return {
        family: evaluate_candidate(
            bundle,
            test,
            out_dir=out / family if family == "xgboost" else None,
            robustness_cases=60,
        )
        for family, bundle in candidates.items()
    }
