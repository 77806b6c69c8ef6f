"""Component: write the model card into the bundle and show it in the KFP UI."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Input, Markdown, Model, Output

from components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def model_card(
    bundle: Input[Model],
    report: Input[Artifact],
    decision: Input[Artifact],
    carded: Output[Model],
    card_markdown: Output[Markdown],
    card_html: Output[HTML],
    family: str,
    search: Input[Artifact] = None,
) -> None:
    """Add the card (HTML + JSON + Markdown) and the test metrics to a copy of the bundle.

    The card carries the offline evidence the package ships for the family (feature-group gains
    and costs, the recorded search, the staleness curve and the ModelStale threshold); when the
    run searched the champion's family, it shows the run's own best trial instead.

    Args:
        bundle: The champion bundle (with its drift detector).
        report: The champion's evaluation folder.
        decision: The gate's decision JSON.
        carded: The sealed bundle, ready to register.
        card_markdown: The card for the KFP UI.
        card_html: The card with plots for the KFP UI.
        family: The champion's model family.
        search: The search step's decision (search_params' ``trials``); none: no search step.
    """
    import json
    import shutil
    from pathlib import Path

    from trending.modelling.gate import GateDecision
    from trending.modelling.search import SearchStep
    from trending.rollout.release import finalize_bundle, read_report

    shutil.copytree(bundle.path, carded.path)
    verdict = json.loads(Path(decision.path).read_text())
    card_dir = finalize_bundle(
        Path(carded.path),
        read_report(Path(report.path)),
        GateDecision.model_validate(verdict["decisions"][family]),
        search=(
            SearchStep.model_validate_json(Path(search.path).read_text())
            if search is not None
            else None
        ),
    )
    shutil.copyfile(card_dir / "model_card.md", card_markdown.path)
    shutil.copyfile(card_dir / "model_card.html", card_html.path)
