"""What the demo sends to the predictor and reads back from the drift service."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pandas as pd

from cli.common import console
from cli.story import DriftSample

SAMPLE_PLOTS = (
    "A haunted house wakes a possessed demon and a family lives through a night of terror.",
    "Two detectives chase a cartel after a bank heist goes wrong and a murder follows.",
    "An alien spaceship lands and a robot must save the planet in the far future.",
)


def show_serving(url: str, model: str) -> None:
    """V1 and V2 requests and a bad request against the running predictor."""
    instances = [{"title_id": f"demo:{i}", "plot": p} for i, p in enumerate(SAMPLE_PLOTS)]
    v1 = httpx.post(f"{url}/v1/models/{model}:predict", json={"instances": instances}, timeout=30)
    for plot, prediction in zip(SAMPLE_PLOTS, v1.json()["predictions"], strict=True):
        top = sorted(prediction["scores"].items(), key=lambda kv: -kv[1])[:3]
        top_text = ", ".join(f"{g} {s:.2f}" for g, s in top)
        console.print(f"[bold]V1[/bold] {plot[:55]}… -> {prediction['genres']} (top: {top_text})")
    v2_input = {"name": "plot", "shape": [1], "datatype": "BYTES", "data": [SAMPLE_PLOTS[0]]}
    v2 = httpx.post(f"{url}/v2/models/{model}/infer", json={"inputs": [v2_input]}, timeout=30)
    console.print(f"[bold]V2[/bold] outputs={json.dumps(v2.json()['outputs'][0]['data'])}")
    bad = httpx.post(f"{url}/v1/models/{model}:predict", json={"instances": [{"plot": " "}]})
    console.print(f"[bold]bad request[/bold] -> {bad.status_code} {bad.json()}")


def send_titles(url: str, model: str, titles: pd.DataFrame, batch: int = 25) -> None:
    """Send ``titles`` to the predictor's V1 endpoint in batches (the payload logger copies them)."""
    with httpx.Client(timeout=60) as client:
        for start in range(0, len(titles), batch):
            part = titles.iloc[start : start + batch]
            instances = [
                {"title_id": t, "plot": p, "reviews": list(r)}
                for t, p, r in zip(part["title_id"], part["plot"], part["reviews"], strict=True)
            ]
            answer = client.post(f"{url}/v1/models/{model}:predict", json={"instances": instances})
            answer.raise_for_status()


def drift_rows(url: str) -> list[dict[str, Any]]:
    """The drift service's current scores, per version scored by both window detectors.

    The semantic detector (Alibi backend) may add a third entry; it does not gate a full window.
    """
    rows = httpx.get(f"{url}/drift", timeout=5).json()
    return [r for r in rows if {"features", "predictions"} <= set(r["detectors"])]


def drift_samples(rows: list[dict[str, Any]], phase: str) -> list[DriftSample]:
    """``rows`` from :func:`drift_rows` as report samples, one per detector, stamped now."""
    now = datetime.now(UTC)
    return [
        DriftSample(
            at=now,
            version=str(row["version"]),
            detector=name,
            p_value=score["p_value"],
            threshold=score["threshold"],
            is_drift=score["is_drift"],
            phase=phase,
        )
        for row in rows
        for name, score in row["detectors"].items()
    ]
