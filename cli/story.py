"""The closed loop told afterwards: a timeline from the registry's event log and an HTML report.

``timeline`` turns :class:`trending.registry.Event` records (register, promote, canary decisions,
retraining, gate decisions, rollbacks...) into one short line each. ``write_report`` writes one
self-contained HTML file (plots embedded as PNG) with the timeline, the drift p-values over time,
the canary's traffic steps and decisions, and every training run's per-family metrics.
``gate_reasons`` and ``find_gate_decision`` say why a gate passed or failed from its decision JSON.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from trending.modelling.runs import RunRecord
from trending.registry import Event


@dataclass(frozen=True)
class DriftSample:
    """One drift-service score of one detector, as seen at ``at``."""

    at: datetime
    version: str
    detector: str
    p_value: float
    threshold: float
    is_drift: bool
    phase: str = ""


def _version(event: Event) -> str:
    return f"v{event.version}" if event.version is not None else ""


def describe(event: Event) -> str:
    """One sentence for one event (the kinds the platform writes; others generically)."""
    d, v = event.details, _version(event)
    if event.kind == "register":
        return f"registered {v} ({event.reason})"
    if event.kind == "promote":
        return f"production -> {v} ({event.reason})"
    if event.kind == "rollback":
        return f"production rolled back to {v} ({event.reason})"
    if event.kind == "canary_start":
        return f"canary -> {v} ({event.reason})"
    if event.kind == "canary_stop":
        return f"canary {v} cleared ({event.reason})"
    if event.kind == "canary_decision":
        return f"canary {v} at {d.get('traffic_percent')}%: {d.get('action')} ({event.reason})"
    if event.kind == "gate_decision":
        champion = d.get("champion")
        scores = ", ".join(
            f"{c['model_family']} {c['micro_f1']:.3f}"
            + ("" if c.get("gate_passed") is not False else " (failed)")
            for c in d.get("candidates", [])
        )
        verdict = f"champion {champion}" if champion else "no candidate passed"
        return f"gate: {verdict}; micro-F1 {scores}"
    if event.kind == "retrain_requested":
        alert = (d.get("evidence") or {}).get("alertname")
        return (
            f"retrain requested by {event.actor} (reason {event.reason}, window "
            f"{d.get('window')}{f', alert {alert}' if alert else ''})"
        )
    if event.kind == "retrain_started":
        window = d.get("window")
        if isinstance(window, dict):
            window = window.get("kind")
        run = f", run {d['run_id']}" if d.get("run_id") else ""
        return f"retrain started by {event.actor} (window {window}{run})"
    if event.kind == "retrain_finished":
        return (
            f"retrain finished: {d.get('outcome')} (champion {d.get('champion')}, "
            f"status {d.get('status')})"
        )
    return f"{event.kind} {v} ({event.reason})".replace("  ", " ")


def timeline(events: Sequence[Event], *, start: datetime | None = None) -> list[str]:
    """One line per event, oldest first: ``+MM:SS  kind  sentence``.

    Args:
        events: Registry events (``Registry.events()``), any order.
        start: Time zero of the offsets (default: the first event).

    Returns:
        The lines; empty when there are no events.
    """
    ordered = sorted(events, key=lambda e: e.at)
    if not ordered:
        return []
    zero = start or ordered[0].at
    lines = []
    for event in ordered:
        seconds = max(0, int((event.at - zero).total_seconds()))
        lines.append(f"+{seconds // 60:02d}:{seconds % 60:02d}  {event.kind:17s} {describe(event)}")
    return lines


def find_gate_decision(pipeline_root: Path, run_id: str) -> dict[str, Any] | None:
    """The gate's decision JSON of run ``run_id`` under a kfp.local pipeline root, if any."""
    for path in sorted(Path(pipeline_root).rglob("decision")):
        try:
            decision = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if decision.get("run_id") == run_id:
            return decision
    return None


def gate_reasons(decision: dict[str, Any], family: str | None = None) -> list[str]:
    """The gate's checks for ``family`` (default: the champion, else the first candidate).

    Returns:
        ``"PASS name: message"`` / ``"FAIL name: message"`` lines, failures first.
    """
    decisions = decision.get("decisions", {})
    family = family or decision.get("choice", {}).get("champion") or next(iter(decisions), None)
    if family is None or family not in decisions:
        return []
    checks = decisions[family].get("checks", [])
    ordered = sorted(checks, key=lambda c: c.get("passed", False))
    return [f"{'PASS' if c['passed'] else 'FAIL'} {c['name']}: {c['message']}" for c in ordered]


def below_default_policy(decision: dict[str, Any], family: str | None = None) -> list[str]:
    """Checks that passed under the decision's policy but would fail ``GatePolicy()`` defaults.

    Only the bounds a policy relaxes by a number are re-checked: robustness pass rates, the
    regression tolerance, the metric floors and the margin over the linear baseline.

    Returns:
        ``"name: observed X < default Y (message)"`` lines.
    """
    from trending.modelling.gate import GatePolicy

    default = GatePolicy()
    decisions = decision.get("decisions", {})
    family = family or decision.get("choice", {}).get("champion") or next(iter(decisions), None)
    # prefix -> (default bound, whether the default needs observed to be strictly above it)
    bounds = {
        # Only pass-rate checks: stability checks observe an excess change (lower is better).
        "robustness:directional:": (default.min_robustness_pass_rate, False),
        "regression:": (-default.max_regression, False),
        "floor:micro_f1": (default.min_micro_f1, False),
        "floor:macro_f1": (default.min_macro_f1, False),
        "baseline:": (default.baseline_margin, True),
    }
    lines = []
    for check in decisions.get(family, {}).get("checks", []) if family else []:
        observed = check.get("observed")
        found = next((b for prefix, b in bounds.items() if check["name"].startswith(prefix)), None)
        if not check.get("passed") or observed is None or found is None:
            continue
        bound, strict = found
        if observed < bound or (strict and observed == bound):
            sign = "<=" if strict else "<"
            lines.append(f"{check['name']}: {observed} {sign} default {bound} ({check['message']})")
    return lines


# ---- the HTML report ----------------------------------------------------------------------------


def _png(figure: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _drift_plot(samples: Sequence[DriftSample], zero: datetime) -> str:
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(8, 3.2))
    for (version, detector), group in _grouped(samples).items():
        xs = [(s.at - zero).total_seconds() for s in group]
        ax.plot(
            xs, [max(s.p_value, 1e-12) for s in group], marker=".", label=f"v{version} {detector}"
        )
    drifted = [s for s in samples if s.phase == "drifted"]
    if drifted:
        onset = (min(s.at for s in drifted) - zero).total_seconds()
        ax.axvline(onset, color="gray", linestyle=":", linewidth=1)
        ax.annotate("drifted traffic", (onset, 1.0), fontsize=8, color="gray")
    thresholds = {s.threshold for s in samples}
    for threshold in thresholds:
        ax.axhline(threshold, color="red", linestyle="--", linewidth=1)
    ax.set_yscale("log")
    ax.set_xlabel("seconds since the first event")
    ax.set_ylabel("p-value (Bonferroni)")
    ax.set_title("Drift service: p-value per detector (red: drift threshold)")
    ax.legend(fontsize=8)
    return _png(figure)


def _grouped(samples: Sequence[DriftSample]) -> dict[tuple[str, str], list[DriftSample]]:
    groups: dict[tuple[str, str], list[DriftSample]] = {}
    for sample in sorted(samples, key=lambda s: s.at):
        groups.setdefault((sample.version, sample.detector), []).append(sample)
    return groups


ACTION_STYLE = {
    "promote": ("^", "tab:green"),
    "hold": ("o", "tab:gray"),
    "rollback": ("X", "tab:red"),
}


def _canary_plot(decisions: Sequence[Event], zero: datetime) -> str:
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(8, 3.2))
    by_version: dict[int | None, list[Event]] = {}
    for event in decisions:
        by_version.setdefault(event.version, []).append(event)
    for version, group in by_version.items():
        xs = [(e.at - zero).total_seconds() for e in group]
        ys = [e.details.get("traffic_percent") or 0 for e in group]
        ax.step(xs, ys, where="post", label=f"canary v{version}")
        for x, y, event in zip(xs, ys, group, strict=True):
            marker, color = ACTION_STYLE.get(event.details.get("action", ""), ("s", "black"))
            ax.scatter([x], [y], marker=marker, color=color, s=60, zorder=3)
    ax.set_ylim(0, 105)
    ax.set_xlabel("seconds since the first event")
    ax.set_ylabel("canary traffic %")
    ax.set_title("Canary: traffic step per decision (▲ promote, ● hold, ✖ rollback)")
    ax.legend(fontsize=8)
    return _png(figure)


def _metrics_plot(runs: Sequence[RunRecord]) -> str:
    import matplotlib.pyplot as plt
    import numpy as np

    families = sorted({f for r in runs for f, m in r.metrics.items() if "micro_f1" in m})
    figure, ax = plt.subplots(figsize=(8, 3.2))
    width = 0.8 / max(len(runs), 1)
    for i, run in enumerate(runs):
        values = [run.metrics.get(f, {}).get("micro_f1", np.nan) for f in families]
        label = f"{run.params.get('reason') or 'run'} ({run.run_id[:14]})"
        ax.bar(np.arange(len(families)) + i * width, values, width, label=label)
    ax.set_xticks(np.arange(len(families)) + width * (len(runs) - 1) / 2, families)
    ax.set_ylim(0, 1)
    ax.set_ylabel("test micro-F1")
    ax.set_title("Training runs: micro-F1 per family ('production' = the serving model, same rows)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _png(figure)


def _metrics_table(runs: Sequence[RunRecord]) -> str:
    rows = []
    for run in runs:
        for family, metrics in run.metrics.items():
            if "micro_f1" not in metrics:
                continue
            mark = " (champion)" if family == run.champion else ""
            rows.append(
                f"<tr><td>{html.escape(run.run_id)}</td><td>{html.escape(family)}{mark}</td>"
                f"<td>{metrics['micro_f1']:.3f}</td><td>{metrics.get('macro_f1', float('nan')):.3f}"
                f"</td><td>{run.registered_version or '-'}</td></tr>"
            )
    return (
        "<table><tr><th>run</th><th>family</th><th>micro-F1</th><th>macro-F1</th>"
        "<th>registered</th></tr>" + "".join(rows) + "</table>"
    )


def write_report(
    path: Path,
    *,
    events: Sequence[Event],
    runs: Sequence[RunRecord] = (),
    drift: Sequence[DriftSample] = (),
    gate: dict[str, list[str]] | None = None,
    title: str = "Trending Now: the closed loop",
) -> Path:
    """Write one self-contained HTML report (plots as embedded PNG, matplotlib Agg).

    Args:
        path: The HTML file to write (folders are created).
        events: The registry's event log.
        runs: Training run records, oldest first (per-family metrics).
        drift: Drift-service samples over time.
        gate: Gate reasons per run label (``gate_reasons`` lines).
        title: The page title.

    Returns:
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    ordered = sorted(events, key=lambda e: e.at)
    zero = min([e.at for e in ordered] + [s.at for s in drift], default=datetime.now().astimezone())
    sections = [f"<h1>{html.escape(title)}</h1>"]
    lines = timeline(ordered, start=zero)
    sections.append(
        '<h2 id="timeline">Timeline (registry event log)</h2><pre>'
        + html.escape("\n".join(lines) or "no events")
        + "</pre>"
    )
    sections.append('<h2 id="drift">Drift</h2>')
    if drift:
        sections.append(
            f'<img alt="drift p-values" src="data:image/png;base64,{_drift_plot(drift, zero)}">'
        )
    else:
        sections.append("<p>No drift scores were collected (monitoring did not run).</p>")
    decisions = [e for e in ordered if e.kind == "canary_decision"]
    sections.append('<h2 id="canary">Canary</h2>')
    if decisions:
        sections.append(
            f'<img alt="canary traffic" src="data:image/png;base64,{_canary_plot(decisions, zero)}">'
        )
        sections.append(
            "<ul>" + "".join(f"<li>{html.escape(describe(e))}</li>" for e in decisions) + "</ul>"
        )
    else:
        sections.append("<p>No canary ran.</p>")
    sections.append('<h2 id="runs">Training runs</h2>')
    if runs:
        sections.append(
            f'<img alt="per-family metrics" src="data:image/png;base64,{_metrics_plot(runs)}">'
        )
        sections.append(_metrics_table(runs))
    else:
        sections.append("<p>No training runs recorded.</p>")
    if gate:
        sections.append('<h2 id="gate">Gate reasons</h2>')
        for label, reasons in gate.items():
            sections.append(
                f"<h3>{html.escape(label)}</h3><pre>{html.escape(chr(10).join(reasons))}</pre>"
            )
    style = (
        "body{font-family:sans-serif;max-width:60em;margin:2em auto}pre{background:#f4f4f4;"
        "padding:1em;overflow-x:auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:.2em .6em}"
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{''.join(sections)}</body></html>"
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
