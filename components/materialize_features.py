"""Component: publish a snapshot to Feast (offline source + online store)."""

from kfp import dsl

from components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def materialize_features(
    data_uri: str,
    snapshot_id: str,
    feature_repo: str,
    feast_dir: str,
    feature_store_yaml: str = "feature_store.yaml",
) -> int:
    """Write the snapshot's feature rows, apply the Feast repo, materialize the online store.

    Args:
        data_uri: Object store holding the snapshots.
        snapshot_id: Snapshot to publish.
        feature_repo: Path of the Feast repository.
        feast_dir: The Feast state folder of this environment; empty: scratch space, with the
            offline rows kept in the data store (cluster).
        feature_store_yaml: The environment's file in feature_repo/ (feature_store.yaml locally,
            feature_store.cluster.yaml on a cluster: S3 registry, Redis online store).

    Returns:
        Number of titles published.
    """
    from trending.data.snapshots import SnapshotStore
    from trending.features.store import open_feature_store
    from trending.registry.objectstore import open_store

    titles = SnapshotStore(open_store(data_uri)).read(snapshot_id)
    return open_feature_store(feature_repo, feature_store_yaml, feast_dir, data_uri).publish(titles)
