"""``trending pipeline``: compile pipelines and run them locally with kfp.local."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from cli.common import console, failures_as_messages, load_settings
from trending.data.snapshots import SnapshotStore
from trending.registry.objectstore import open_store
from trending.settings import Settings

app = typer.Typer(help="Compile, run and submit KFP pipelines.", no_args_is_help=True)

ACCELERATOR_HELP = (
    "Accelerator of the BERT step: none (CPU pool, short training; kind) or nvidia.com/gpu "
    "(GPU pool, CUDA image). Default: TRENDING_ACCELERATOR, else none."
)


def pipeline_arguments(
    settings: Settings,
    name: str,
    *,
    snapshot_id: str | None = None,
    reason: str | None = None,
    window: str | None = None,
) -> dict[str, Any]:
    """Arguments of a local run: the settings' defaults (training: newest snapshot by default)."""
    from pipelines.cluster import pipeline_defaults

    arguments = pipeline_defaults(settings)
    if name == "training":
        if not SnapshotStore(open_store(arguments["data_uri"])).list():
            raise ValueError("no dataset snapshot yet: run `trending data ingest` first")
        arguments["source"] = "snapshot"
        arguments["source_params_json"] = json.dumps(
            {"snapshot_id": snapshot_id} if snapshot_id else {}
        )
    if name == "continuous-training":
        arguments.update({k: v for k, v in {"reason": reason, "window": window}.items() if v})
    return arguments


@app.command("compile")
def compile_(
    output_dir: Path = typer.Option(Path("build/pipelines"), help="Where the IR YAML files go."),
    accelerator: str | None = typer.Option(None, help=ACCELERATOR_HELP),
) -> None:
    """Compile every pipeline to KFP IR YAML; every parameter defaults to the settings."""
    from pipelines.run import compile_all

    settings = load_settings()
    with failures_as_messages(ValueError):
        paths = compile_all(output_dir, settings, accelerator=accelerator)
    for path in paths:
        console.print(f"compiled {path}")


@app.command()
def run(
    name: str = typer.Argument("training", help="Pipeline to run: training | continuous-training."),
    snapshot_id: str | None = typer.Option(
        None, help="training: snapshot to train on (default: newest)."
    ),
    reason: str | None = typer.Option(
        None, help="continuous-training: drift | schedule | data_volume | performance."
    ),
    window: str | None = typer.Option(
        None, help="continuous-training: fixed | growing | drift_selected."
    ),
    param: list[str] = typer.Option([], help="Any pipeline parameter as key=value (repeatable)."),
) -> None:
    """Run a pipeline locally with kfp.local's SubprocessRunner (no cluster needed)."""
    from pipelines.run import PipelineFailedError, pipeline_named, run_local, typed_arguments

    settings = load_settings()
    log = settings.home.resolve() / "logs" / f"{name}.log"
    with failures_as_messages(ValueError, PipelineFailedError):
        pipeline_named(name)
        arguments = pipeline_arguments(
            settings, name, snapshot_id=snapshot_id, reason=reason, window=window
        )
        try:  # TRENDING_PIPELINE_PARAMS, then --param on top
            arguments.update(typed_arguments(name, settings.pipeline_params))
        except ValueError as exc:
            raise ValueError(f"TRENDING_PIPELINE_PARAMS: {exc}") from None
        arguments.update(typed_arguments(name, _overrides(param)))
        output = run_local(name, arguments, settings.home.resolve() / "kfp", log)
    if name != "training":
        console.print(f"pipeline {name} finished: {output} (step logs: {log})")
        return
    _training_summary(Path(output.path), arguments, log)


def _training_summary(decision_path: Path, arguments: dict[str, Any], log: Path) -> None:
    """Print what the training run decided; exit 1 (GateFailedError) when there is no champion."""
    from trending.modelling.gate import GateFailedError
    from trending.modelling.runs import RunLog
    from trending.rollout.release import require_champion, run_summary

    verdict = json.loads(decision_path.read_text())
    run = RunLog.from_uri(arguments["registry_uri"], arguments["model_name"]).get(verdict["run_id"])
    console.print(f"pipeline training finished: run {verdict['run_id']} (step logs: {log})")
    for line in run_summary(
        verdict, metrics=run.metrics, registered_version=run.registered_version
    ):
        console.print(line, markup=False, highlight=False)
    with failures_as_messages(GateFailedError):
        require_champion(verdict)


def _overrides(params: list[str]) -> dict[str, Any]:
    pairs = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not key=value", param_hint="--param")
        pairs[key] = value
    return pairs


def _cluster_client(host: str | None, namespace: str | None) -> Any:
    from pipelines.run import kfp_client

    settings = load_settings()
    host = host or settings.kfp_host
    if not host:
        raise typer.BadParameter(
            "no KFP host: pass --host or set TRENDING_KFP_HOST", param_hint="--host"
        )
    token = settings.kfp_token.get_secret_value() if settings.kfp_token else None
    return kfp_client(host, token=token, namespace=namespace or settings.kfp_namespace)


def _client_and_package(
    name: str, host: str | None, namespace: str | None, build_dir: Path, accelerator: str | None
) -> tuple[Any, Path]:
    """The freshly compiled pipeline ``name`` (settings checked first) and a checked KFP client."""
    from pipelines.run import compile_pipeline

    package = compile_pipeline(name, build_dir, load_settings(), accelerator=accelerator)
    return _cluster_client(host, namespace), package


@app.command()
def submit(
    name: str = typer.Argument(..., help="Pipeline to run: training | continuous-training."),
    host: str | None = typer.Option(None, help="KFP API endpoint (default: TRENDING_KFP_HOST)."),
    namespace: str | None = typer.Option(None, help="KFP namespace (multi-user installs)."),
    experiment: str = typer.Option("trending", help="KFP experiment name."),
    param: list[str] = typer.Option(
        [], help="Override a parameter as key=value (repeatable); none is needed."
    ),
    compile_: bool = typer.Option(
        False,
        "--compile",
        help="Submit this checkout, compiled with your TRENDING_* settings, instead of the "
        "version the chart uploaded.",
    ),
    build_dir: Path = typer.Option(Path("build/pipelines"), help="Where compiled pipelines go."),
    accelerator: str | None = typer.Option(None, help=ACCELERATOR_HELP + " With --compile."),
) -> None:
    """Start one run on a KFP cluster: the newest uploaded version, every parameter defaulted.

    The chart's Job compiled and uploaded the pipelines with the release's settings, so
    `trending pipeline submit training --host …` is a complete run. The token comes from
    TRENDING_KFP_TOKEN.
    """
    from pipelines.run import KfpUnreachableError, pipeline_named, submit_uploaded, typed_arguments
    from pipelines.run import submit as submit_run

    with failures_as_messages(KfpUnreachableError, ValueError):
        if compile_:
            client, package = _client_and_package(name, host, namespace, build_dir, accelerator)
            run_id = submit_run(
                client,
                name,
                package,
                typed_arguments(name, _overrides(param)),
                experiment=experiment,
            )
        else:
            if accelerator is not None:
                raise typer.BadParameter("needs --compile", param_hint="--accelerator")
            pipeline_named(name)
            client = _cluster_client(host, namespace)
            run_id = submit_uploaded(
                client, name, typed_arguments(name, _overrides(param)), experiment=experiment
            )
    console.print(f"submitted {name}: run {run_id}")


@app.command()
def upload(
    version: str = typer.Option(..., help="Version label of this upload, e.g. the release tag."),
    host: str | None = typer.Option(None, help="KFP API endpoint (default: TRENDING_KFP_HOST)."),
    namespace: str | None = typer.Option(None, help="KFP namespace (multi-user installs)."),
    build_dir: Path = typer.Option(Path("build/pipelines"), help="Where compiled pipelines go."),
    accelerator: str | None = typer.Option(None, help=ACCELERATOR_HELP),
) -> None:
    """Compile every pipeline (defaults from the settings) and upload it as a new version."""
    from pipelines.run import KfpUnreachableError, compile_all
    from pipelines.run import upload as upload_pipeline

    settings = load_settings()
    with failures_as_messages(KfpUnreachableError, ValueError):
        packages = compile_all(build_dir, settings, accelerator=accelerator)
        client = _cluster_client(host, namespace)
        for package in packages:
            name = package.stem
            console.print(
                f"uploaded {name}: version {upload_pipeline(client, name, package, version)}"
            )


@app.command()
def schedule(
    name: str = typer.Argument(..., help="Pipeline to run on a schedule."),
    cron: str = typer.Option(..., help="KFP cron, six fields with seconds first: '0 0 3 * * *'."),
    host: str | None = typer.Option(None, help="KFP API endpoint (default: TRENDING_KFP_HOST)."),
    namespace: str | None = typer.Option(None, help="KFP namespace (multi-user installs)."),
    experiment: str = typer.Option("trending", help="KFP experiment name."),
    param: list[str] = typer.Option([], help="Pipeline parameter as key=value (repeatable)."),
    build_dir: Path = typer.Option(Path("build/pipelines"), help="Where compiled pipelines go."),
    accelerator: str | None = typer.Option(None, help=ACCELERATOR_HELP),
) -> None:
    """Create a recurring run of a pipeline on a KFP cluster (parameters: the settings' defaults)."""
    from pipelines.run import KfpUnreachableError
    from pipelines.run import schedule as schedule_run

    with failures_as_messages(KfpUnreachableError, ValueError):
        client, package = _client_and_package(name, host, namespace, build_dir, accelerator)
        job_id = schedule_run(
            client, name, package, _overrides(param), cron=cron, experiment=experiment
        )
    console.print(f"scheduled {name} ({cron}): recurring run {job_id}")


@app.command()
def start(
    name: str = typer.Argument(
        ..., help="Uploaded pipeline to run (see `trending pipeline upload`)."
    ),
    version: str | None = typer.Option(
        None, help="Version label given to `upload` (the chart's appVersion); default: newest."
    ),
    run_name: str | None = typer.Option(None, help="Display name of the run."),
    host: str | None = typer.Option(None, help="KFP API endpoint (default: TRENDING_KFP_HOST)."),
    namespace: str | None = typer.Option(None, help="KFP namespace (multi-user installs)."),
    experiment: str = typer.Option("trending", help="KFP experiment name."),
    param: list[str] = typer.Option([], help="Pipeline parameter as key=value (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (for programs)."),
) -> None:
    """Start one run of an uploaded pipeline version with every parameter from the settings.

    The retrain trigger's ``kfp`` launcher runs this (``--json``): parameters are the settings'
    defaults, TRENDING_PIPELINE_PARAMS, then each --param, checked against the pipeline.
    """
    import contextlib
    import sys

    from pipelines.cluster import pipeline_defaults
    from pipelines.run import KfpUnreachableError, pipeline_named, typed_arguments

    settings = load_settings()
    with failures_as_messages(KfpUnreachableError, ValueError):
        declared = pipeline_named(name).component_spec.inputs or {}
        arguments = {k: v for k, v in pipeline_defaults(settings).items() if k in declared}
        arguments.update(typed_arguments(name, settings.pipeline_params))
        arguments.update(typed_arguments(name, _overrides(param)))
        client = _cluster_client(host, namespace)
        # kfp.Client prints links on stdout; stdout is kept for the answer.
        with contextlib.redirect_stdout(sys.stderr):
            started = _start_uploaded(
                client,
                name,
                version,
                arguments,
                run_name=run_name or f"{name}-run",
                experiment=experiment,
                namespace=namespace or settings.kfp_namespace,
            )
    if as_json:
        print(json.dumps(started))
    else:
        console.print(
            f"started {name} version {started['pipeline_version_id']}: run {started['run_id']}"
        )


def _start_uploaded(
    client: Any,
    name: str,
    version: str | None,
    arguments: dict[str, Any],
    *,
    run_name: str,
    experiment: str,
    namespace: str | None,
) -> dict[str, Any]:
    """Resolve the uploaded pipeline and version by name, create the run, describe it."""
    pipeline_id = client.get_pipeline_id(name)
    if pipeline_id is None:
        raise ValueError(
            f"no pipeline {name!r} on KFP: upload it first (`trending pipeline upload`)"
        )
    wanted = f"{name}-{version}" if version else None
    query: dict[str, Any] = {"page_size": 1, "sort_by": "created_at desc"}
    if wanted:
        query["filter"] = json.dumps(
            {"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": wanted}]}
        )
    versions = client.list_pipeline_versions(pipeline_id, **query).pipeline_versions or []
    if not versions:
        raise ValueError(
            f"pipeline {name!r} has no version {wanted!r} on KFP: upload it (`trending pipeline "
            "upload --version ...`) or name an uploaded version"
            if wanted
            else f"pipeline {name!r} has no version on KFP: upload one"
        )
    version_id = versions[0].pipeline_version_id
    experiment_id = client.create_experiment(name=experiment, namespace=namespace).experiment_id
    run = client.run_pipeline(
        experiment_id, run_name, params=arguments, pipeline_id=pipeline_id, version_id=version_id
    )
    return {
        "run_id": str(run.run_id),
        "display_name": run_name,
        "pipeline_id": pipeline_id,
        "pipeline_version_id": version_id,
        "experiment_id": experiment_id,
        "parameters": arguments,
    }
