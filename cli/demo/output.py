"""The demo's console lines and its closing timeline and report."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

from cli.common import console
from cli.demo.run import DemoRun
from cli.story import below_default_policy, gate_reasons, timeline, write_report
from trending.modelling.runs import RunLog


def print_run(metrics: dict[str, dict[str, Any]], champion: str | None, decision: dict) -> None:
    """Each family's scores, the champion, and the gate checks worth reading."""
    for family, values in metrics.items():
        mark = "  <- champion" if family == champion else ""
        console.print(
            f"  {family:10s} micro-F1={values['micro_f1']:.3f} "
            f"macro-F1={values['macro_f1']:.3f}{mark}"
        )
    reasons = gate_reasons(decision)
    shown = [
        r for r in reasons if r.startswith("FAIL") or re.search(r"regression|floor:|baseline", r)
    ]
    verdict = "[green]passed[/green]" if champion else "[red]no candidate passed[/red]"
    console.print(f"gate {verdict} ({champion or 'best candidate'}): {len(reasons)} checks")
    for line in shown[:6]:
        console.print(f"    {line}")
    for line in below_default_policy(decision):
        console.print(f"    [yellow]would fail the default policy:[/yellow] {line}")


def print_drift(rows: list[dict[str, Any]]) -> None:
    """One line per scored version: each detector's p-value and whether it flags drift."""
    for row in rows:
        scores = ", ".join(
            f"{name} p={o['p_value']:.2g}{' DRIFT' if o['is_drift'] else ''}"
            for name, o in row["detectors"].items()
        )
        console.print(f"  v{row['version']} window={row['window_size']}: {scores}")


def print_decisions(outcome: Any) -> None:
    """A canary rollout's decisions, one line each, and its result."""
    for d in outcome.decisions:
        console.print(
            f"  v{outcome.canary_version} at {d.traffic_percent}%: {d.action} — {d.reason}"
        )
    colour = "green" if outcome.result == "promoted" else "red"
    console.print(f"result: [{colour}]{outcome.result}[/{colour}]")


@contextmanager
def section_errors() -> Iterator[None]:
    """A step that times out or fails ends the demo with one red line and exit code 1."""
    try:
        yield
    except (TimeoutError, RuntimeError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None


def finish(run: DemoRun) -> None:
    """The timeline from the registry's event log, the HTML report, and the wall time."""
    console.rule("timeline (registry event log)")
    events = run.registry.events()
    for line in timeline(events):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    runs = sorted(
        RunLog.from_uri(run.settings.resolved_registry_uri, run.model).list(),
        key=lambda r: r.started_at,
    )
    report = write_report(
        run.home / "report.html", events=events, runs=runs, drift=run.drift, gate=run.gate
    )
    minutes, seconds = divmod(int(time.monotonic() - run.begun), 60)
    console.rule(
        f"done in {minutes}:{seconds:02d}: every process the demo started has stopped; "
        f"report {report}; state and logs in {run.home}"
    )
