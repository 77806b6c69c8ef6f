"""Component: store accepted titles and their rejects as a content-addressed snapshot."""

from kfp import dsl
from kfp.dsl import Dataset, Input

from components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def snapshot(
    accepted: Input[Dataset],
    rejected: Input[Dataset],
    data_uri: str,
    source: str,
    params_json: str = "{}",
) -> str:
    """Write the snapshot (a no-op when the same rows were snapshotted before).

    Args:
        accepted: Validated rows.
        rejected: Quarantined rows with reasons.
        data_uri: Object store for snapshots; S3 credentials come from the environment.
        source: Where the rows came from, recorded in the manifest.
        params_json: The source parameters, recorded in the manifest.

    Returns:
        The snapshot id (hash of the canonical rows).
    """
    import json

    import pandas as pd

    from trending.data.ingest import write_snapshot
    from trending.data.schema import ValidationReport
    from trending.data.snapshots import SnapshotStore
    from trending.registry.objectstore import open_store

    report = ValidationReport(
        accepted=pd.read_parquet(accepted.path), rejected=pd.read_parquet(rejected.path)
    )
    manifest = write_snapshot(
        SnapshotStore(open_store(data_uri)), report, source=source, params=json.loads(params_json)
    )
    return manifest.snapshot_id
