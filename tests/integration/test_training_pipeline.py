"""The training pipeline runs for real through kfp.local and registers a servable version."""

from __future__ import annotations

import pytest

from pipelines.run import run_local
from trending.cli.pipeline import training_arguments
from trending.ingest import ingest_frame, publish_features
from trending.models import GenrePredictor
from trending.registry import Registry
from trending.synthetic import generate_titles

pytestmark = pytest.mark.integration


def test_training_pipeline_registers_the_first_version_as_production(
    settings, tmp_path, fast_params_json
):
    snapshot = ingest_frame(generate_titles(300, seed=5), settings, source="synthetic").manifest
    publish_features(settings, snapshot.snapshot_id)
    arguments = {**training_arguments(settings), "params_json": fast_params_json}

    version = run_local("training", arguments, tmp_path / "kfp", tmp_path / "pipeline.log")

    registry = Registry.from_uri(settings.resolved_registry_uri, settings.model_name)
    assert version == 1
    assert registry.resolve("production") == 1
    record = registry.show(1)
    assert record.lineage.data_snapshot_id == snapshot.snapshot_id
    assert set(record.metrics) >= {"validation", "test"}
    bundle = registry.download(1, tmp_path / "bundle")
    assert GenrePredictor.from_bundle(bundle).predict_titles([("a haunted house", [])])
    assert "load-features" in (tmp_path / "pipeline.log").read_text()
