"""Snapshots are content-addressed, immutable and keep their rejects."""

from __future__ import annotations

from trending.data.schema import validate_titles
from trending.data.snapshots import SnapshotStore, snapshot_id
from trending.data.synthetic import generate_titles
from trending.registry.objectstore import LocalObjectStore


def test_same_rows_same_id_in_any_order():
    frame = generate_titles(30, seed=4)
    assert snapshot_id(frame) == snapshot_id(frame.sample(frac=1, random_state=1))
    changed = frame.copy()
    changed.loc[0, "plot"] = changed.loc[0, "plot"] + " twist"
    assert snapshot_id(changed) != snapshot_id(frame)


def test_write_read_and_reingest_is_a_no_op(tmp_path):
    store = SnapshotStore(LocalObjectStore(tmp_path))
    frame = generate_titles(30, seed=5)
    frame.loc[0, "plot"] = ""
    report = validate_titles(frame)
    first = store.write(report, source="synthetic", params={"seed": 5})
    again = store.write(validate_titles(frame), source="synthetic")

    assert again.created_at == first.created_at and again.snapshot_id == first.snapshot_id
    assert first.counts == {"in": 30, "accepted": 29, "rejected": 1}
    assert len(store.read(first.snapshot_id)) == 29
    assert store.rejects(first.snapshot_id)["reason"].str.contains("plot").all()
    assert [m.snapshot_id for m in store.list()] == [first.snapshot_id]
