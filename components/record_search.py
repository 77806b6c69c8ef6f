"""Component: the search step's decision and trials join the run record the gate step wrote."""

from kfp import dsl
from kfp.dsl import Artifact, Input

from components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def record_search(
    search: Input[Artifact],
    decision: Input[Artifact],
    registry_uri: str,
    model_name: str,
) -> None:
    """Add the search step's decision and trials to the run record the gate step wrote.

    Args:
        search: The search step's decision (search_params' ``trials``).
        decision: The gate's decision JSON; its run id names the run record.
        registry_uri: Registry root (the run log lives there); S3 credentials come from the
            environment (a Kubernetes Secret), never from a parameter.
        model_name: Registered model name.
    """
    import json
    from pathlib import Path

    from trending.modelling.runs import RunLog
    from trending.modelling.search import SearchStep
    from trending.rollout.release import record_search as record

    record(
        RunLog.from_uri(registry_uri, model_name),
        json.loads(Path(decision.path).read_text())["run_id"],
        SearchStep.model_validate_json(Path(search.path).read_text()),
    )
