"""The model card of a registered version: HTML (with the plots inlined) + JSON + Markdown.

The card states intended use, data snapshot and lineage, metrics and slices, calibration,
robustness, thresholds, limitations and the gate decision, all read from the bundle manifest, the
``EvaluationReport`` and the ``GateDecision``. ``render_markdown`` gives the same content for
KFP's ``dsl.Markdown`` output. It also carries the offline evidence the family's defaults rest on
(``evidence``: feature-group gains and costs, the search, the staleness curve).

Modules: ``evidence`` (read and package the benchmarks' evidence), ``content`` (the JSON card),
``sections`` (the sections Markdown and HTML share), ``render`` (Markdown, HTML, the files).
"""

from trending.modelling.card.content import INTENDED_USE, LIMITATIONS, card_content
from trending.modelling.card.evidence import (
    ABLATION_SCORER,
    EVIDENCE_FAMILIES,
    EVIDENCE_PRODUCER,
    MODELS_RESULTS,
    STALE_THRESHOLD_REASON,
    STALENESS_RESULTS,
    collect_evidence,
    load_evidence,
    packaged_evidence,
    packaged_evidence_path,
    with_run_search,
)
from trending.modelling.card.render import (
    ModelCardPaths,
    render_html,
    render_markdown,
    write_model_card,
)

__all__ = [
    "ABLATION_SCORER",
    "EVIDENCE_FAMILIES",
    "EVIDENCE_PRODUCER",
    "INTENDED_USE",
    "LIMITATIONS",
    "MODELS_RESULTS",
    "STALENESS_RESULTS",
    "STALE_THRESHOLD_REASON",
    "ModelCardPaths",
    "card_content",
    "collect_evidence",
    "load_evidence",
    "packaged_evidence",
    "packaged_evidence_path",
    "render_html",
    "render_markdown",
    "with_run_search",
    "write_model_card",
]
