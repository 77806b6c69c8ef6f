"""Component: read a snapshot's labelled titles with their Feast historical features."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def load_features(
    features: Output[Dataset],
    data_uri: str,
    snapshot_id: str,
    feature_repo: str,
    feast_dir: str,
    feature_store_yaml: str = "feature_store.yaml",
) -> None:
    """Join the snapshot's labels with point-in-time-correct features from Feast.

    Args:
        features: Parquet of title_id, event_timestamp, genres and the feature service's columns.
        data_uri: Object store holding the snapshots (file:///dir or s3://bucket/prefix).
        snapshot_id: The snapshot whose titles and labels to train on.
        feature_repo: Path of the Feast repository (feature_repo/).
        feast_dir: The Feast state folder of this environment; empty: scratch space, with the
            offline rows kept in the data store (cluster).
        feature_store_yaml: The environment's file in feature_repo/ (feature_store.yaml locally,
            feature_store.cluster.yaml on a cluster: S3 registry, Redis online store).
    """
    from trending.data.snapshots import SnapshotStore
    from trending.features.store import open_feature_store
    from trending.registry.objectstore import open_store

    titles = SnapshotStore(open_store(data_uri)).read(snapshot_id)
    store = open_feature_store(feature_repo, feature_store_yaml, feast_dir, data_uri)
    frame = store.historical(titles[["title_id", "event_timestamp", "genres"]])
    frame.to_parquet(features.path, index=False)
    features.metadata.update({"rows": len(frame), "snapshot_id": snapshot_id})
