"""Component: score a bundle on the held-out split and record the metrics in it."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def evaluate(
    bundle: Input[Model],
    test: Input[Dataset],
    evaluated: Output[Model],
    metrics: Output[Metrics],
) -> float:
    """Copy the bundle, add its test metrics to the manifest, and log them for the KFP UI.

    Args:
        bundle: The trained bundle.
        test: Held-out rows.
        evaluated: The bundle with test metrics in its manifest.
        metrics: Test metrics for the KFP UI.

    Returns:
        The test micro-F1.
    """
    import shutil
    from pathlib import Path

    import pandas as pd

    from trending.training import evaluate_bundle

    shutil.copytree(bundle.path, evaluated.path)
    manifest = evaluate_bundle(Path(evaluated.path), pd.read_parquet(test.path))
    for name, value in manifest.metrics["test"].items():
        metrics.log_metric(name, value)
    return float(manifest.metrics["test"]["micro_f1"])
