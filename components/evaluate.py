"""Component: evaluate a candidate on the held-out split (metrics, slices, calibration, robustness)."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def evaluate(
    bundle: Input[Model],
    test: Input[Dataset],
    report: Output[Artifact],
    metrics: Output[Metrics],
    robustness: bool = True,
    robustness_cases: int = 200,
) -> float:
    """Write the evaluation report (report.json + PNG plots) and log headline metrics.

    Args:
        bundle: The candidate bundle.
        test: Held-out labelled rows, the same for every candidate.
        report: Folder with report.json and the plots.
        metrics: Overall metrics for the KFP UI.
        robustness: Run the behavioural checks (typos, names, directional); the gate needs them.
        robustness_cases: At most this many test texts per behavioural check.

    Returns:
        The test micro-F1.
    """
    from pathlib import Path

    import pandas as pd

    from trending.modelling.training import evaluate_candidate

    result = evaluate_candidate(
        Path(bundle.path),
        pd.read_parquet(test.path),
        out_dir=Path(report.path),
        robustness=robustness,
        robustness_cases=robustness_cases,
    )
    for name, value in result.overall.items():
        metrics.log_metric(name, value)
    report.metadata["family"] = result.model_family
    return float(result.overall["micro_f1"])
