"""The card rendered: Markdown, one self-contained HTML page (plots inlined), and the files."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from trending.modelling.bundle import BundleManifest
from trending.modelling.card.content import card_content
from trending.modelling.card.sections import card_sections, format_value
from trending.modelling.evaluation import EvaluationReport
from trending.modelling.gate import GateDecision


class ModelCardPaths(BaseModel):
    """Where the card was written."""

    html: Path
    json_path: Path
    markdown: Path


def _md_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(format_value(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(
    report: EvaluationReport,
    gate: GateDecision,
    manifest: BundleManifest,
    evidence: Mapping[str, Any] | None = None,
) -> str:
    """The card as Markdown (for ``dsl.Markdown`` and the registry's docs)."""
    parts = [f"# Model card: genre classifier ({manifest.model_family})"]
    for title, text, header, rows in card_sections(report, gate, manifest, evidence):
        parts.append(f"## {title}")
        if text:
            parts.append(text)
        if header:
            parts.append(_md_table(header, rows))
    return "\n\n".join(parts) + "\n"


def _html_table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(format_value(v))}</td>" for v in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(
    report: EvaluationReport,
    gate: GateDecision,
    manifest: BundleManifest,
    evidence: Mapping[str, Any] | None = None,
) -> str:
    """The card as one self-contained HTML page (plots inlined as base64 PNGs)."""
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Model card: {html.escape(manifest.model_family)}</title>",
        "<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto}"
        "table{border-collapse:collapse;margin:.5rem 0}"
        "td,th{border:1px solid #ccc;padding:.2rem .5rem}"
        ".fail{color:#b00}</style></head><body>",
        f"<h1>Model card: genre classifier ({html.escape(manifest.model_family)})</h1>",
    ]
    for title, text, header, rows in card_sections(report, gate, manifest, evidence):
        css = " class='fail'" if title.endswith("FAILED") else ""
        out.append(f"<h2{css}>{html.escape(title)}</h2>")
        if text:
            out.append("<p>" + html.escape(text).replace("\n", "<br>") + "</p>")
        if header:
            out.append(_html_table(header, rows))
    for name, path in report.plots.items():
        if Path(path).is_file():
            data = base64.b64encode(Path(path).read_bytes()).decode()
            label = html.escape(name)
            out.append(f"<h3>{label}</h3><img alt='{label}' src='data:image/png;base64,{data}'>")
    out.append("</body></html>")
    return "\n".join(out)


def write_model_card(
    report: EvaluationReport,
    gate: GateDecision,
    manifest: BundleManifest,
    out_dir: Path,
    evidence: Mapping[str, Any] | None = None,
) -> ModelCardPaths:
    """Write ``model_card.html``, ``model_card.json`` and ``model_card.md`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = ModelCardPaths(
        html=out_dir / "model_card.html",
        json_path=out_dir / "model_card.json",
        markdown=out_dir / "model_card.md",
    )
    paths.html.write_text(render_html(report, gate, manifest, evidence))
    paths.json_path.write_text(
        json.dumps(card_content(report, gate, manifest, evidence), indent=2, default=str)
    )
    paths.markdown.write_text(render_markdown(report, gate, manifest, evidence))
    return paths
