"""Both pipelines run for real through kfp.local: training registers, retraining stages a canary."""

import contextlib
import json
from pathlib import Path

import pytest
from fixtures.gate import FLOORS_OFF
from kfp import dsl

from cli.pipeline import pipeline_arguments
from pipelines.run import run_local
from trending.data.ingest import ingest_frame
from trending.data.synthetic import DriftKnobs, generate_titles
from trending.modelling.bundle import (
    BundleTrust,
    load_signing_key,
    new_signing_key,
    verify_bundle,
)
from trending.modelling.card import packaged_evidence
from trending.modelling.runs import RunLog
from trending.registry import Registry

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Small but real: every step runs, BERT takes two optimizer steps, robustness checks a few texts.
FAST = {
    "xgboost_params_json": json.dumps(
        {
            "n_estimators": 20,
            "max_depth": 3,
            "max_features": 2000,
            "char_features": 0,
            "stack_folds": 2,
        }
    ),
    "bert_params_json": json.dumps(
        {"max_steps": 2, "max_length": 32, "epochs": 1, "batch_size": 16}
    ),
    "robustness_cases": 10,
}
# The data are tiny, so the floors are off; the regression rule (candidate vs production) stays.
LENIENT = FLOORS_OFF


def test_training_then_continuous_training(settings, tmp_path):
    ingest_frame(generate_titles(260, seed=5), settings, source="synthetic", max_reject_rate=0.5)
    registry = Registry.from_uri(settings.resolved_registry_uri, settings.model_name)
    runs = RunLog.from_uri(settings.resolved_registry_uri, settings.model_name)

    training = {
        **pipeline_arguments(settings, "training"),
        **FAST,
        "gate_policy_json": json.dumps(LENIENT),
        "search_trials": 2,  # the seeded XGBoost search step, on the training split
    }
    decision = run_local("training", training, tmp_path / "kfp", tmp_path / "training.log")

    run = runs.get(json.loads(Path(decision.path).read_text())["run_id"])
    assert run.status == "succeeded" and run.registered_version == 1
    assert set(run.metrics) == {"xgboost", "bert", "linear", "prior"}
    # The search's trials are in the run record, and XGBoost's training got its best trial.
    search = run.search["xgboost"]
    assert len(search["search"]["trials"]) == 2
    assert search["params"] == {
        **json.loads(FAST["xgboost_params_json"]),
        **search["search"]["best_params"],
    }
    assert registry.resolve("production") == 1
    bundle = verify_bundle(registry.download(1, tmp_path / "v1"))
    assert (
        any(f.startswith("drift/") for f in bundle.files) and "card/model_card.html" in bundle.files
    )
    # The card carries the packaged evidence; the search shown is the run's own for XGBoost.
    card = json.loads((tmp_path / "v1" / "card" / "model_card.json").read_text())
    assert card["feature_groups"] == packaged_evidence(run.champion)["feature_groups"]
    shipped = packaged_evidence(run.champion)["search"]["source"]
    assert card["search"]["source"] == ("run" if run.champion == "xgboost" else shipped)

    # New (drifted) titles arrive; retraining on the growing window compares with production.
    ingest_frame(
        generate_titles(120, seed=6, drift=DriftKnobs(vocabulary_shift=0.3)),
        settings,
        source="synthetic",
        max_reject_rate=0.5,
    )
    retraining = {
        **pipeline_arguments(settings, "continuous-training", reason="drift", window="growing"),
        **FAST,
        "gate_policy_json": json.dumps({**LENIENT, "max_regression": 1.0}),
    }
    outcome = run_local("continuous-training", retraining, tmp_path / "kfp", tmp_path / "ct.log")

    assert outcome == "deployed-as-canary"
    assert registry.resolve("canary") == 2 and registry.resolve("production") == 1
    events = [e for e in registry.events() if e.kind.startswith("retrain_")]
    assert [e.kind for e in events] == ["retrain_started", "retrain_finished"]
    finished = events[-1].details
    assert finished["outcome"] == "deployed-as-canary"
    assert (
        "production" in finished["comparison"]
        and finished["comparison"]["production"]["micro_f1"] >= 0
    )


# ---------------------------------------------------------------------------------------------
# The compiled IR, as uploaded, with the cluster profile: each step in its own fresh working
# directory, HOME and environment (like separate pods), S3 from moto, the online store on Redis.
# ---------------------------------------------------------------------------------------------

REDIS_PASSWORD = "pipeline-test-password"


@pytest.fixture
def redis_port(tmp_path):
    """A password-protected redis-server from the distribution, on a free loopback port."""
    import shutil
    import subprocess

    from fixtures.s3 import free_port, wait_for_port

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--requirepass",
            REDIS_PASSWORD,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def cluster(tmp_path, redis_port, monkeypatch):
    """Cluster-profile settings on moto's S3 and Redis, and the Secrets the cluster would hold."""
    from fixtures.s3 import ACCESS_KEY, SECRET_KEY, MotoServer, new_bucket, s3_env

    from trending.settings import Settings

    moto = MotoServer().start()
    bucket = new_bucket(moto.endpoint)
    # This process plays the data engineer (ingest) and the reader of the results.
    for key, value in s3_env(moto.endpoint).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("REDIS_PASSWORD", REDIS_PASSWORD)
    settings = Settings(
        profile="cluster",
        home=tmp_path / "laptop",
        data_uri=f"s3://{bucket}/data",
        registry_uri=f"s3://{bucket}/registry",
        s3_endpoint=moto.endpoint,
        redis_host="127.0.0.1",
        redis_port=redis_port,
        # The component image carries feature_repo/ at /app; here the steps see the checkout.
        pipeline_feature_repo=str(REPO / "feature_repo"),
        feature_repo=REPO / "feature_repo",
        # Tiny models; the gate's floors off (tiny data). From the settings, as on a cluster.
        pipeline_params={
            **{k: str(v) for k, v in FAST.items()},
            "gate_policy_json": json.dumps({**LENIENT, "max_regression": 1.0}),
        },
    )
    # Read Feast here as a pipeline step would: with the environment the IR gives its steps.
    from pipelines.cluster import pipeline_config

    for key, value in pipeline_config(settings).step_env.items():
        monkeypatch.setenv(key, value)
    secrets = {
        "trending-s3": {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY},
        "trending-redis": {"REDIS_PASSWORD": REDIS_PASSWORD},
        # The register step signs with it (ADR 0011); only that step mounts it.
        "trending-bundle-signing": {"TRENDING_BUNDLE_SIGNING_KEY": new_signing_key()[0]},
    }
    yield settings, secrets
    moto.stop()


REPO = Path(__file__).resolve().parents[2]


def _training_features(pipeline_root: Path):
    """The load-features artifact of the last run under ``pipeline_root`` (what was trained on)."""
    import pandas as pd

    found = sorted(pipeline_root.glob("*/load-features/features"), key=lambda p: p.stat().st_mtime)
    assert found, f"no load-features artifact under {pipeline_root}"
    return pd.read_parquet(found[-1])


# About 35 steps, each a fresh interpreter: minutes on a quiet 2-core machine, more when shared.
@pytest.mark.timeout(3600)
def test_compiled_pipelines_run_with_each_step_isolated_on_the_cluster_profile(cluster, tmp_path):
    from pipelines.pods import PodIsolation, run_compiled
    from pipelines.run import compile_pipeline, required_without_default
    from trending.data.ingest import feature_store, ingest_frame, snapshot_store
    from trending.data.lineage import data_lineage
    from trending.features.featurize import FEATURE_COLUMNS

    settings, secrets = cluster
    first = ingest_frame(
        generate_titles(160, seed=5), settings, source="synthetic", max_reject_rate=0.5
    ).manifest
    packages = {
        name: compile_pipeline(name, tmp_path / "build", settings)
        for name in ("training", "continuous-training")
    }
    assert all(required_without_default(p) == [] for p in packages.values())
    root = tmp_path / "kfp"

    # Training: no argument at all — every parameter is the settings' default in the IR.
    run_compiled(packages["training"], {}, root, PodIsolation(tmp_path / "pods-1", secrets))

    registry = Registry.from_uri(settings.resolved_registry_uri, settings.model_name)
    assert registry.resolve("production") == 1
    signing_key = load_signing_key(
        secrets["trending-bundle-signing"]["TRENDING_BUNDLE_SIGNING_KEY"]
    )
    public = BundleTrust(public_key=signing_key.public_key())
    verify_bundle(registry.download(1, tmp_path / "v1"), trust=public)  # signed by the pipeline
    lineage = data_lineage(registry, snapshot_store(settings), 1)
    assert lineage.data_snapshot_id == first.snapshot_id
    assert [m.snapshot_id for m in lineage.snapshots] == [first.snapshot_id]
    assert lineage.missing is None

    # Feast's online store (Redis) serves what training read from the offline store.
    trained_on = _training_features(root).drop_duplicates("title_id").set_index("title_id")
    ids = sorted(trained_on.index)[:25]
    online = feature_store(settings).online(ids)
    for title_id, row in zip(ids, online, strict=True):
        assert row is not None, title_id
        for column in FEATURE_COLUMNS:
            expected = trained_on.loc[title_id, column]
            expected = list(expected) if column == "reviews" else expected
            assert row[column] == expected, (title_id, column)

    # New titles arrive; the continuous-training IR retrains on the growing window.
    second = ingest_frame(
        generate_titles(80, seed=6, drift=DriftKnobs(vocabulary_shift=0.3)),
        settings,
        source="synthetic",
        max_reject_rate=0.5,
    ).manifest
    outputs = run_compiled(
        packages["continuous-training"],
        {"reason": "drift"},
        root,
        PodIsolation(tmp_path / "pods-2", secrets),
    )
    assert outputs["Output"] == "deployed-as-canary"
    assert registry.resolve("canary") == 2 and registry.resolve("production") == 1
    lineage = data_lineage(registry, snapshot_store(settings), 2)
    window = lineage.snapshots[0]
    assert lineage.data_snapshot_id == window.snapshot_id and window.source == "window"
    # The growing window holds both batches.
    assert window.counts["accepted"] == first.counts["accepted"] + second.counts["accepted"]
    kinds = [e.kind for e in registry.events() if e.kind.startswith("retrain_")]
    assert kinds == ["retrain_started", "retrain_finished"]


# A two-step pipeline whose second step reads a file the first wrote outside the KFP artifacts.
@dsl.component(base_image="python:3.11")
def write_local_state(folder: str) -> str:
    """Write a marker file into ``folder`` (relative: the working directory; ~: HOME)."""
    from pathlib import Path

    path = Path(folder).expanduser() / "state.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("written by the first step")
    return str(path)


@dsl.component(base_image="python:3.11")
def read_local_state(folder: str) -> str:
    """Read the marker file back, as a step that wrongly relies on a shared disk would."""
    from pathlib import Path

    return (Path(folder).expanduser() / "state.txt").read_text()


@dsl.pipeline(name="shared-disk")
def shared_disk_pipeline(folder: str) -> str:
    """Write then read a local path, ordered but sharing no artifact."""
    written = write_local_state(folder=folder)
    return read_local_state(folder=folder).after(written).output


@pytest.mark.parametrize("folder", ["state", "~/state"])
def test_a_step_reading_a_local_path_another_step_wrote_fails_when_isolated(tmp_path, folder):
    from kfp import compiler

    from pipelines.pods import PodIsolation, run_compiled

    package = tmp_path / "shared-disk.yaml"
    compiler.Compiler().compile(shared_disk_pipeline, str(package))
    arguments = {"folder": folder}
    # Shared (kfp.local as is): the second step finds the first one's file, relative to the
    # shared working directory or the shared HOME.
    with contextlib.chdir(tmp_path), pytest.MonkeyPatch.context() as env:
        env.setenv("HOME", str(tmp_path / "home"))
        shared = run_compiled(package, arguments, tmp_path / "kfp-shared")
    assert shared["Output"] == "written by the first step"
    # Isolated like pods: the same IR fails at the reading step.
    with contextlib.chdir(tmp_path), pytest.raises(RuntimeError, match="read-local-state"):
        run_compiled(package, arguments, tmp_path / "kfp", PodIsolation(tmp_path / "pods"))
