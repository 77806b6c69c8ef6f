"""Hand-built evaluation reports with chosen headline numbers, for gate and card tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trending.modelling.evaluation import (
    EvaluationReport,
    RobustnessCheck,
    RobustnessReport,
    build_report,
)


def make_report(
    family: str = "xgboost",
    *,
    micro: float = 0.7,
    macro: float = 0.6,
    ece: float = 0.05,
    pass_rate: float = 1.0,
    tv_micro: float | None = None,
) -> EvaluationReport:
    """A report with chosen headline numbers (built from labels/scores that produce them)."""
    rng = np.random.default_rng(0)
    y = (rng.random((80, 3)) < 0.4).astype(int)
    frame = pd.DataFrame(
        {"kind": ["movie"] * 40 + ["tv"] * 40, "plot": ["x" * 100] * 80, "year": [2001] * 80}
    )
    report = build_report(
        model_family=family,
        genres=["Comedy", "Drama", "Horror"],
        thresholds=[0.5, 0.5, 0.5],
        frame=frame,
        y_true=y,
        scores=np.clip(y * 0.8 + 0.1, 0, 1),
        robustness=RobustnessReport(
            checks=[
                RobustnessCheck(
                    name="invariance:names",
                    kind="invariance",
                    description="names swapped",
                    cases=100,
                    passed=round(pass_rate * 100),
                    pass_rate=pass_rate,
                )
            ]
        ),
    )
    overall = {**report.overall, "micro_f1": micro, "macro_f1": macro}
    slices = [
        s.model_copy(update={"micro_f1": tv_micro}) if s.name == "kind=tv" and tv_micro else s
        for s in report.slices
    ]
    calib = report.calibration.model_copy(update={"ece": ece})
    # Headline numbers are set by hand, so the per-row counts behind them would disagree: none.
    return report.model_copy(
        update={"overall": overall, "slices": slices, "calibration": calib, "row_counts": None}
    )
