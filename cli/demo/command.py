"""The ``trending demo`` command: the closed loop's story, one step per line."""

from __future__ import annotations

import typer

from cli.common import console, load_settings
from cli.demo import stages
from cli.demo.output import finish, section_errors
from cli.demo.run import DemoRun
from cli.local_monitoring import MonitoringBinariesMissingError, find_monitoring_binaries


def demo(
    rows: int = typer.Option(1200, min=100, max=100_000, help="Synthetic titles to train on."),
) -> None:
    """Run the closed loop: data -> KFP -> KServe -> drift -> alert -> retrain -> canary."""
    run = DemoRun.fresh(load_settings())
    snapshot_id = stages.ingest_titles(run, rows)
    stages.publish_snapshot(run, snapshot_id)
    production = stages.train(run, snapshot_id)
    if production is None:
        console.print("[red]nothing was registered: the gate refused every candidate (above)[/red]")
        finish(run)
        raise typer.Exit(1)

    try:
        binaries = find_monitoring_binaries()
    except MonitoringBinariesMissingError as missing:
        stages.serve_without_monitoring(run, missing)
        finish(run)
        return

    with section_errors():
        outcome = stages.close_the_loop(run, binaries)
    candidate = stages.show_retraining(run, outcome)
    if candidate is not None:
        with section_errors():
            stages.roll_out_canaries(run, production, candidate)
    finish(run)
