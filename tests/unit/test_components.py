"""Every KFP component's body (``python_func``) on small real data, chained like the pipeline."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from fixtures.gate import FLOORS_OFF
from kfp.dsl import HTML, Artifact, Dataset, Markdown, Metrics, Model

from components.evaluate import evaluate
from components.evaluate_production import evaluate_production
from components.fit_drift_detector import fit_drift_detector
from components.gate import gate
from components.ingest import ingest
from components.load_features import load_features
from components.materialize_features import materialize_features
from components.model_card import model_card
from components.register import register
from components.retrain_events import finish_retrain, start_retrain
from components.snapshot import snapshot
from components.split_dataset import split_dataset
from components.train_model import train_model
from components.validate import validate
from trending.data.ingest import ingest_frame
from trending.data.synthetic import generate_titles
from trending.modelling.bundle import verify_bundle
from trending.modelling.runs import RunLog
from trending.registry import Registry
from trending.settings import Settings

REPO = Path(__file__).resolve().parents[2]
FAST = {
    "xgboost": {
        "n_estimators": 20,
        "max_depth": 3,
        "max_features": 2000,
        "char_features": 0,
        "stack_folds": 2,
    },
    "bert": {"max_steps": 2, "max_length": 32, "epochs": 1, "batch_size": 16},
    "linear": {},
    "prior": {},
}
LENIENT = json.dumps(FLOORS_OFF)


def artifact(kind, folder: Path, name: str):
    return kind(name=name, uri=str(folder / name))


pytestmark = pytest.mark.slow  # the module's flow runs every component on real (small) data


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    """Run the data and training components once, in order, as the pipeline would."""
    root = tmp_path_factory.mktemp("flow")
    settings = Settings(home=root / "home", feature_repo=REPO / "feature_repo")
    ingest_frame(generate_titles(260, seed=9), settings, source="synthetic", max_reject_rate=0.5)
    data_uri = settings.data_dir.resolve().as_uri()
    ns = SimpleNamespace(
        root=root, settings=settings, data_uri=data_uri, registry_uri=settings.resolved_registry_uri
    )

    raw = artifact(Dataset, root, "raw.parquet")
    ingest.python_func(
        raw=raw, data_uri=data_uri, source="window", params_json='{"kind": "growing"}'
    )
    accepted, rejected = (
        artifact(Dataset, root, "accepted.parquet"),
        artifact(Dataset, root, "rejected.parquet"),
    )
    ns.counts = validate.python_func(raw=raw, accepted=accepted, rejected=rejected)
    ns.snapshot_id = snapshot.python_func(
        accepted=accepted, rejected=rejected, data_uri=data_uri, source="window"
    )
    feast = {
        "feature_repo": str(REPO / "feature_repo"),
        "feast_dir": str(settings.feature_store_dir.resolve()),
    }
    ns.published = materialize_features.python_func(
        data_uri=data_uri, snapshot_id=ns.snapshot_id, **feast
    )
    features = artifact(Dataset, root, "features.parquet")
    load_features.python_func(
        features=features, data_uri=data_uri, snapshot_id=ns.snapshot_id, **feast
    )
    ns.train, ns.test = (
        artifact(Dataset, root, "train.parquet"),
        artifact(Dataset, root, "test.parquet"),
    )
    split_dataset.python_func(features=features, train=ns.train, test=ns.test, seed=3)

    ns.bundles, ns.reports = {}, {}
    for family, params in FAST.items():
        bundle = artifact(Model, root, f"bundle-{family}")
        train_model.python_func(
            train=ns.train,
            bundle=bundle,
            family=family,
            snapshot_id=ns.snapshot_id,
            params_json=json.dumps(params),
        )
        report = artifact(Artifact, root, f"report-{family}")
        evaluate.python_func(
            bundle=bundle,
            test=ns.test,
            report=report,
            metrics=artifact(Metrics, root, f"m-{family}"),
            robustness=family in ("xgboost", "bert"),
            robustness_cases=10,
        )
        ns.bundles[family], ns.reports[family] = bundle, report
    ns.production = artifact(Artifact, root, "production")
    ns.production_version = evaluate_production.python_func(
        test=ns.test,
        report=ns.production,
        registry_uri=ns.registry_uri,
        model_name="genre-classifier",
    )
    return ns


def run_gate(flow, policy_json: str, tag: str, reports=None):
    reports = reports or flow.reports
    champion, champion_report = (
        artifact(Model, flow.root, f"champion-{tag}"),
        artifact(Artifact, flow.root, f"cr-{tag}"),
    )
    decision = artifact(Artifact, flow.root, f"decision-{tag}.json")
    verdict = gate.python_func(
        xgboost_bundle=flow.bundles["xgboost"],
        xgboost_report=reports["xgboost"],
        bert_bundle=flow.bundles["bert"],
        bert_report=reports["bert"],
        linear_report=reports["linear"],
        prior_report=reports["prior"],
        production_report=flow.production,
        champion=champion,
        champion_report=champion_report,
        decision=decision,
        registry_uri=flow.registry_uri,
        model_name="genre-classifier",
        policy_json=policy_json,
    )
    return verdict, champion, champion_report, decision


def test_data_components_reconcile_and_publish(flow):
    rows_in, rows_accepted, rows_rejected = flow.counts
    assert rows_in == rows_accepted + rows_rejected == 260
    assert flow.snapshot_id.startswith("snap-")
    assert flow.published == rows_accepted
    train, test = pd.read_parquet(flow.train.path), pd.read_parquet(flow.test.path)
    assert len(train) + len(test) == rows_accepted
    assert set(train["title_id"]).isdisjoint(test["title_id"])


def test_every_family_produces_a_verified_bundle_and_a_report(flow):
    for family in FAST:
        assert verify_bundle(Path(flow.bundles[family].path)).model_family == family
        report = json.loads((Path(flow.reports[family].path) / "report.json").read_text())
        assert report["model_family"] == family
        assert 0 <= report["overall"]["micro_f1"] <= 1
    assert flow.production_version == 0  # no production yet: an empty report folder
    assert list(Path(flow.production.path).iterdir()) == []


def test_gate_failure_registers_nothing_and_says_why(flow):
    strict = json.dumps({"min_micro_f1": 0.999})
    champion_family, champion, _, decision = run_gate(flow, strict, "strict")
    run_id = json.loads(Path(decision.path).read_text())["run_id"]
    assert champion_family == ""
    assert not Path(champion.path).exists()
    run = RunLog.from_uri(flow.registry_uri, "genre-classifier").get(run_id)
    assert run.status == "gate_failed" and "micro_f1" in run.notes and "0.999" in run.notes
    assert set(run.metrics) == {"xgboost", "bert", "linear", "prior"}
    registry = Registry.from_uri(flow.registry_uri, "genre-classifier")
    assert registry.list_versions() == []
    assert registry.events()[-1].kind == "gate_decision"


def test_shuffled_labels_are_stopped_by_the_gate(flow, tmp_path):
    train = pd.read_parquet(flow.train.path)
    train["genres"] = train["genres"].sample(frac=1, random_state=1).to_numpy()
    shuffled = artifact(Dataset, tmp_path, "shuffled.parquet")
    train.to_parquet(shuffled.path, index=False)
    bundle, report = artifact(Model, tmp_path, "bundle"), artifact(Artifact, tmp_path, "report")
    train_model.python_func(
        train=shuffled,
        bundle=bundle,
        family="xgboost",
        snapshot_id="x",
        params_json=json.dumps(FAST["xgboost"]),
    )
    evaluate.python_func(
        bundle=bundle,
        test=flow.test,
        report=report,
        metrics=artifact(Metrics, tmp_path, "m"),
        robustness_cases=10,
    )
    default_policy = "{}"
    champion_family, _, _, decision = run_gate(
        flow, default_policy, "shuffled", {**flow.reports, "xgboost": report}
    )
    run_id = json.loads(Path(decision.path).read_text())["run_id"]
    assert champion_family != "xgboost"
    notes = RunLog.from_uri(flow.registry_uri, "genre-classifier").get(run_id).notes
    assert "gate failed for xgboost" in notes and "baseline" in notes


def test_passing_champion_gets_detector_card_and_registration(flow):
    family, champion, champion_report, decision = run_gate(flow, LENIENT, "lenient")
    run_id = json.loads(Path(decision.path).read_text())["run_id"]
    assert family in {"xgboost", "bert"}
    with_detector = artifact(Model, flow.root, "with-detector")
    fit_drift_detector.python_func(
        bundle=champion, train=flow.train, bundle_with_detector=with_detector
    )
    carded = artifact(Model, flow.root, "carded")
    md, html = artifact(Markdown, flow.root, "card.md"), artifact(HTML, flow.root, "card.html")
    model_card.python_func(
        bundle=with_detector,
        report=champion_report,
        decision=decision,
        carded=carded,
        card_markdown=md,
        card_html=html,
        family=family,
    )
    manifest = verify_bundle(Path(carded.path))
    assert any(f.startswith("drift/") for f in manifest.files)
    assert {"card/model_card.html", "card/model_card.json"} <= set(manifest.files)
    assert manifest.metrics["test"]["micro_f1"] >= 0
    assert "Gate" in Path(md.path).read_text() or "gate" in Path(md.path).read_text()

    version = register.python_func(
        bundle=carded,
        decision=decision,
        registry_uri=flow.registry_uri,
        model_name="genre-classifier",
    )
    registry = Registry.from_uri(flow.registry_uri, "genre-classifier")
    assert registry.resolve("production") == version
    assert registry.show(version).lineage.has_drift_detector
    assert (
        RunLog.from_uri(flow.registry_uri, "genre-classifier").get(run_id).registered_version
        == version
    )

    params = json.loads(
        start_retrain.python_func(
            registry_uri=flow.registry_uri,
            model_name="genre-classifier",
            reason="drift",
            window="fixed",
            window_days=30,
        )
    )
    assert params == {"kind": "fixed", "days": 30}
    outcome = finish_retrain.python_func(
        decision=decision,
        registry_uri=flow.registry_uri,
        model_name="genre-classifier",
        reason="drift",
    )
    assert outcome == "promoted"
    kinds = [e.kind for e in registry.events()]
    assert kinds[-2:] == ["retrain_started", "retrain_finished"]


def test_retrain_refuses_an_unknown_reason(flow):
    with pytest.raises(ValueError, match="unknown retraining reason 'boredom'"):
        start_retrain.python_func(
            registry_uri=flow.registry_uri, model_name="genre-classifier", reason="boredom"
        )
