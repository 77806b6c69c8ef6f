"""Component: the parameters one family trains with — the caller's, or the best of a seeded search.

With a budget of 0 the caller's parameters over the family's defaults (the best of the recorded
search) go through unchanged; above 0 a seeded search on the training rows picks them.
``components/record_search.py`` puts the decision and its trials into the run record.
"""

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
        trials: The step's decision (trending.modelling.search.SearchStep JSON): the parameters
            training gets and, when a search ran, every trial and the best one.
        family: Model family: xgboost | bert | linear | prior.
        n_trials: The search budget (the first trial is the family's defaults); 0 searches
            nothing and keeps the recorded defaults.
        fixed_params_json: JSON object of parameters every trial uses (not searched).
        seed: Seed of the split, the sampler and the models.

    Returns:
        The parameters to train with (the fixed ones plus the best trial's) as JSON, for
        train_model's params_json.
    """
    import json
    from pathlib import Path

    import pandas as pd

    from trending.modelling.search import params_for_training

    step = params_for_training(
        pd.read_parquet(train.path) if n_trials > 0 else None,
        family,
        n_trials=n_trials,
        seed=seed,
        fixed_params=json.loads(fixed_params_json),
    )
    Path(trials.path).write_text(step.model_dump_json(indent=2))
    trials.metadata.update({"family": family, "n_trials": n_trials})
    if step.search is not None:
        trials.metadata["best_micro_f1"] = step.search.best_micro_f1
    return json.dumps(step.params)
