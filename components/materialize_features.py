"""Component: publish a snapshot to Feast (offline source + online store)."""

from kfp import dsl

from components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def materialize_features(data_uri: str, snapshot_id: str, feature_repo: str, feast_dir: str) -> int:
    """Write the snapshot's feature rows, apply the Feast repo, materialize the online store.

    Args:
        data_uri: Object store holding the snapshots.
        snapshot_id: Snapshot to publish.
        feature_repo: Path of the Feast repository.
        feast_dir: The Feast state folder of this environment.

    Returns:
        Number of titles published.
    """
    from pathlib import Path

    from trending.data.snapshots import SnapshotStore
    from trending.features.store import TitleFeatureStore
    from trending.registry.objectstore import open_store

    titles = SnapshotStore(open_store(data_uri)).read(snapshot_id)
    return TitleFeatureStore(Path(feature_repo), Path(feast_dir)).publish(titles)
