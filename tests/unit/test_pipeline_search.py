"""The compiled pipelines, read as KFP reads them: the search step feeds XGBoost's training, its
decision reaches the run record before registration and the card, and the two pipelines take
their shared parameters from one declaration (pipelines/parameters.py), which docs/pipelines.md
documents."""

from __future__ import annotations

from pathlib import Path

import pytest
from pipeline_ir import read_package

from pipelines.continuous_training import CONTINUOUS_TRAINING_PARAMETERS, RETRAIN_GATE_POLICY
from pipelines.parameters import REQUIRED, TRAINING, PipelineParameter, parameters
from pipelines.training import TRAINING_PARAMETERS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compiled(cluster_packages):
    """Both pipelines, cluster profile: (pipeline spec, Kubernetes platform spec) by name."""
    return {name: read_package(path) for name, path in cluster_packages.items()}


def tasks_by_display_name(spec: dict) -> dict[str, tuple[str, dict]]:
    """Display name -> (task key, task), over the root DAG and every sub-DAG."""
    found = {}
    for dag in [spec["root"], *spec["components"].values()]:
        for key, task in dag.get("dag", {}).get("tasks", {}).items():
            found[task["taskInfo"]["name"]] = (key, task)
    return found


def test_the_search_step_feeds_xgboost_training_and_is_recorded_before_registering(compiled):
    spec, platform = compiled["training"]
    tasks = tasks_by_display_name(spec)
    search_key, search = tasks["search-xgboost"]
    inputs = search["inputs"]["parameters"]
    assert inputs["n_trials"] == {"componentInputParameter": "search_trials"}
    assert inputs["fixed_params_json"] == {"componentInputParameter": "xgboost_params_json"}
    assert search["inputs"]["artifacts"]["train"]["taskOutputArtifact"] == {
        "outputArtifactKey": "train",
        "producerTask": "split-dataset",
    }
    # XGBoost trains with what the step returns; the other families do not wait for it.
    _, xgboost = tasks["train-xgboost"]
    assert xgboost["inputs"]["parameters"]["params_json"]["taskOutputParameter"] == {
        "outputParameterKey": "Output",
        "producerTask": search_key,
    }
    assert search_key not in tasks["train-bert"][1].get("dependentTasks", [])
    # The trials reach the run record (with the registry's credentials) after the gate wrote it,
    # and registration, which rewrites the record, waits for that.
    record_key, record = tasks["record-search"]
    assert record["inputs"]["artifacts"]["search"]["taskOutputArtifact"]["producerTask"] == (
        search_key
    )
    assert "gate" in record["dependentTasks"]
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    record_executor = spec["components"][record["componentRef"]["name"]]["executorLabel"]
    assert {s["secretName"] for s in k8s[record_executor]["secretAsEnv"]} == {"trending-s3"}
    condition_key, _ = tasks["gate-passed"]
    assert record_key in spec["root"]["dag"]["tasks"][condition_key]["dependentTasks"]
    # The card step sees the same trials.
    _, card = tasks["model-card"]
    assert card["inputs"]["artifacts"]["search"] == {
        "componentInputArtifact": f"pipelinechannel--{search_key}-trials"
    }


def test_both_pipelines_have_search_trials_defaulting_to_the_recorded_defaults(compiled):
    for name, (spec, *_) in compiled.items():
        declared = spec["root"]["inputDefinitions"]["parameters"]["search_trials"]
        assert declared["parameterType"] == "NUMBER_INTEGER", name
        assert declared["defaultValue"] == 0, name
        assert "0 keeps the defaults" in declared["description"], name


def test_shared_parameters_come_from_one_declaration(compiled):
    training = compiled["training"][0]["root"]["inputDefinitions"]["parameters"]
    retraining = compiled["continuous-training"][0]["root"]["inputDefinitions"]["parameters"]
    # Each pipeline's own defaults; everything else they share is declared (and compiled) once.
    own = {"reason", "gate_policy_json"}
    shared = (set(training) & set(retraining)) - own
    assert {p.name for p in TRAINING} - own <= shared
    for name in shared:
        assert training[name] == retraining[name], name
    assert retraining["gate_policy_json"]["defaultValue"] == RETRAIN_GATE_POLICY
    assert training["gate_policy_json"]["defaultValue"] == "{}"
    assert (training["reason"]["defaultValue"], retraining["reason"]["defaultValue"]) == (
        "training pipeline",
        "schedule",
    )
    # Every parameter the retraining pipeline shares with training is handed to it.
    handed = {p.name for p in CONTINUOUS_TRAINING_PARAMETERS} & {
        p.name for p in TRAINING_PARAMETERS
    }
    assert handed == (set(training) & set(retraining))


def test_a_parameter_list_refuses_duplicates_and_stray_defaults():
    first = PipelineParameter("seed", int, "Seed.", 7)
    with pytest.raises(ValueError, match=r"listed twice: \['seed'\]"):
        parameters((first,), first)
    with pytest.raises(ValueError, match=r"does not have: \['epochs'\]"):
        parameters((first,), defaults={"epochs": 1})
    assert parameters((first,), defaults={"seed": 3})[0].default == 3
    assert PipelineParameter("data_uri", str, "Data.").default is REQUIRED


def _documented_rows() -> dict[str, list[str]]:
    """docs/pipelines.md's parameter table: name -> [type, training, continuous-training]."""
    rows = {}
    for line in (ROOT / "docs" / "pipelines.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 5:
            rows[cells[0].strip("`")] = cells[1:4]
    return rows


def _documented_default(parameter: PipelineParameter | None) -> str:
    if parameter is None:
        return "—"
    if parameter.default is REQUIRED:
        return "required"
    return f"`{parameter.default}`" if parameter.default != "" else '`""`'


def test_the_documented_parameter_table_is_the_declaration():
    documented = _documented_rows()
    training = {p.name: p for p in TRAINING_PARAMETERS}
    retraining = {p.name: p for p in CONTINUOUS_TRAINING_PARAMETERS}
    assert set(documented) == set(training) | set(retraining)
    for name, (kind, in_training, in_retraining) in documented.items():
        declared = training.get(name) or retraining[name]
        assert kind == declared.annotation.__name__, name
        assert in_training == _documented_default(training.get(name)), name
        assert in_retraining == _documented_default(retraining.get(name)), name
