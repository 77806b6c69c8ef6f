"""Component: check raw titles against the Title record; quarantine the rest."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def validate(
    raw: Input[Dataset],
    accepted: Output[Dataset],
    rejected: Output[Dataset],
    max_reject_rate: float = 0.2,
) -> NamedTuple("Counts", [("rows_in", int), ("rows_accepted", int), ("rows_rejected", int)]):
    """Split rows into accepted and rejected (with reasons); fail above ``max_reject_rate``.

    Args:
        raw: Titles as ingested.
        accepted: Rows that meet the contract, normalised.
        rejected: Rows that do not, each with ``row`` and ``reason``.
        max_reject_rate: Share of rejected rows above which the run stops.

    Returns:
        Rows in, accepted and rejected (in == accepted + rejected).
    """
    from collections import namedtuple

    import pandas as pd

    from trending.data.schema import validate_titles
    from trending.genres import GenreVocabulary

    report = validate_titles(pd.read_parquet(raw.path), GenreVocabulary())
    report.accepted.to_parquet(accepted.path, index=False)
    report.rejected.astype(str).to_parquet(rejected.path, index=False)
    if report.reject_rate > max_reject_rate:
        raise ValueError(
            f"{report.counts['rejected']} of {report.counts['in']} rows rejected "
            f"({report.reject_rate:.0%} > {max_reject_rate:.0%}); see the rejected artifact"
        )
    counts = namedtuple("Counts", ["rows_in", "rows_accepted", "rows_rejected"])
    return counts(report.counts["in"], report.counts["accepted"], report.counts["rejected"])
