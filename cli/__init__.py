"""The ``trending`` command line. Settings are built per command from the environment.

Commands that drive adapters (pipelines, serving) import them inside the command body, so the
core library never imports KFP or KServe; see docs/adr/0002-import-direction.md.
"""

from __future__ import annotations

import typer

from cli.canary import canary_app, deploy, shadow_app
from cli.data import app as data_app
from cli.demo import demo
from cli.features import app as features_app
from cli.pipeline import app as pipeline_app
from cli.registry import app as registry_app
from cli.runs import app as runs_app

app = typer.Typer(
    help="Trending Now: train, register and serve genre classifiers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(data_app, name="data")
app.add_typer(features_app, name="features")
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(registry_app, name="registry")
app.add_typer(runs_app, name="runs")
app.add_typer(canary_app, name="canary")
app.add_typer(shadow_app, name="shadow")
app.command()(deploy)
app.command()(demo)
