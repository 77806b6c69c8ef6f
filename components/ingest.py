"""Component: fetch raw titles from a source, a snapshot, or a window over snapshots."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def ingest(
    raw: Output[Dataset],
    data_uri: str,
    source: str = "snapshot",
    params_json: str = "{}",
) -> None:
    """Write the titles a run starts from, unvalidated, as Parquet.

    Args:
        raw: The titles as the source gave them.
        data_uri: Object store holding the snapshots (file:///dir or s3://bucket/prefix).
        source: synthetic | file | tmdb | snapshot | window.
        params_json: JSON object of source parameters (e.g. {"snapshot_id": ...},
            {"kind": "fixed", "days": 30}); API keys never go here (they come from a Secret).
    """
    import json

    from trending.data.snapshots import SnapshotStore
    from trending.data.windows import titles_for_training
    from trending.registry.objectstore import open_store

    snapshots = SnapshotStore(open_store(data_uri))
    titles = titles_for_training(source, json.loads(params_json), snapshots)
    titles.to_parquet(raw.path, index=False)
    raw.metadata.update({"rows": len(titles), "source": source})
