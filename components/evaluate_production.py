"""Component: evaluate the current production model on the candidates' test split."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Output

from components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def evaluate_production(
    test: Input[Dataset],
    report: Output[Artifact],
    registry_uri: str,
    model_name: str,
) -> int:
    """Score the production version on the same rows, so the gate compares like with like.

    Args:
        test: Held-out labelled rows.
        report: Folder with report.json; empty when there is no production version yet.
        registry_uri: Registry root; S3 credentials come from the environment.
        model_name: Registered model name.

    Returns:
        The production version evaluated, or 0 when there is none.
    """
    import tempfile
    from pathlib import Path

    import pandas as pd

    from trending.modelling.training import evaluate_candidate
    from trending.registry import Registry

    registry = Registry.from_uri(registry_uri, model_name)
    Path(report.path).mkdir(parents=True, exist_ok=True)
    if registry.alias("production") is None:
        return 0
    version = registry.resolve("production")
    with tempfile.TemporaryDirectory() as scratch:
        bundle = registry.download(version, Path(scratch) / "bundle")
        evaluate_candidate(
            bundle, pd.read_parquet(test.path), out_dir=Path(report.path), robustness=False
        )
    return version
