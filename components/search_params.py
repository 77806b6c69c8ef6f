"""Component: a small seeded hyper-parameter search for one family; best params as JSON."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Output

from components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def search_params(
    train: Input[Dataset],
    trials: Output[Artifact],
    family: str,
    n_trials: int = 10,
    fixed_params_json: str = "{}",
    seed: int = 7,
) -> str:
    """Search the family's main parameters on the training rows (never the test rows).

    Args:
        train: Training rows (features + genres).
        trials: Every trial and the best one (trending.modelling.search.SearchResult JSON),
            for the run record.
        family: Model family: xgboost | bert | linear | prior.
        n_trials: The search budget (the first trial is the family's defaults).
        fixed_params_json: JSON object of parameters every trial uses.
        seed: Seed of the split, the sampler and the models.

    Returns:
        The best parameters (merged over the fixed ones) as JSON, for train_model's params_json.
    """
    import json
    from pathlib import Path

    import pandas as pd

    from trending.modelling.search import search_family

    fixed = json.loads(fixed_params_json)
    result = search_family(
        pd.read_parquet(train.path), family, n_trials=n_trials, seed=seed, fixed_params=fixed
    )
    Path(trials.path).write_text(result.model_dump_json(indent=2))
    trials.metadata.update({"family": family, "best_micro_f1": result.best_micro_f1})
    return json.dumps({**fixed, **result.best_params})
