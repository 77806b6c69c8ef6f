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
) -> None:
    """Add the card (HTML + JSON + Markdown) and the test metrics to a copy of the bundle.

    Args:
        bundle: The champion bundle (with its drift detector).
        report: The champion's evaluation folder.
        decision: The gate's decision JSON.
        carded: The sealed bundle, ready to register.
        card_markdown: The card for the KFP UI.
        card_html: The card with plots for the KFP UI.
        family: The champion's model family.
    """
    import json
    import shutil
    from pathlib import Path

    from trending.modelling.gate import GateDecision
    from trending.rollout.release import finalize_bundle, read_report

    shutil.copytree(bundle.path, carded.path)
    verdict = json.loads(Path(decision.path).read_text())
    card_dir = finalize_bundle(
        Path(carded.path),
        read_report(Path(report.path)),
        GateDecision.model_validate(verdict["decisions"][family]),
    )
    shutil.copyfile(card_dir / "model_card.md", card_markdown.path)
    shutil.copyfile(card_dir / "model_card.html", card_html.path)
