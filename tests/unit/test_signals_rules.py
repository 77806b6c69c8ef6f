"""ModelStale and DataStale fire on the series the freshness exporter really serves.

The exporter (``serving.signals``) is scraped over its own app's ``/metrics``; every sample it
serves, with its real name and labels, becomes an input series of a promtool rule test. A rule
that names a metric or label the exporter does not serve cannot pass: the test writes no name
of its own. Fresh values keep both alerts quiet; the same series aged past the thresholds fire.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from fixtures.bundles import make_bundle
from prometheus_client.parser import text_string_to_metric_families

from serving.signals.__main__ import FreshnessCollector, create_app
from trending.data.schema import validate_titles
from trending.data.snapshots import SnapshotStore
from trending.data.synthetic import generate_titles
from trending.genres import GenreVocabulary
from trending.registry import Registry
from trending.registry.objectstore import open_store

pytestmark = pytest.mark.tools

RULES = Path(__file__).resolve().parents[2] / "monitoring" / "rules" / "trending.rules.yml"
DAYS_40 = 40 * 86400


def _scraped(tmp_path: Path) -> list[tuple[str, dict[str, str], float]]:
    registry = Registry.from_uri((tmp_path / "registry").as_uri(), "genre-classifier")
    registry.register_version(make_bundle(tmp_path), actor="test", reason="v1")
    registry.promote(1, actor="test", reason="first production")
    snapshots = SnapshotStore(open_store((tmp_path / "data").as_uri()))
    snapshots.write(
        validate_titles(generate_titles(60, seed=3), GenreVocabulary()), source="synthetic"
    )
    answer = TestClient(create_app(FreshnessCollector(registry, snapshots))).get("/metrics")
    assert answer.status_code == 200
    return [
        (sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    ]


def _series(name: str, labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def _promtool_test(tmp_path: Path, samples, *, age_by: float, expect: bool) -> str:
    """A rule test over the scraped series, each aged by ``age_by`` seconds, then one more per
    minute; ``expect`` whether ModelStale and DataStale fire after 2 hours."""
    series = [
        {"series": _series(name, labels), "values": f"{_minutes(value + age_by)}+60x180"}
        for name, labels, value in samples
    ]
    cases = []
    for alert in ("ModelStale", "DataStale"):
        case: dict = {"alertname": alert, "eval_time": "2h"}
        if expect:
            firing = [
                s
                for s in samples
                if s[0] in _alert_metrics(alert)
                and (alert != "ModelStale" or s[1].get("alias") == "production")
            ]
            case["exp_alerts"] = [
                {
                    "exp_labels": _alert_labels(alert, labels),
                    "exp_annotations": _annotations(alert, labels, _minutes(value + age_by) + 7200),
                }
                for _, labels, value in firing
            ]
        cases.append(case)
    test = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": cases}],
    }
    path = tmp_path / "signals.test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    return str(path)


def _minutes(seconds: float) -> int:
    """Whole minutes (the exporter's fresh ages are seconds; rounding keeps the text stable)."""
    return round(seconds / 60.0) * 60


def _humanize_duration(seconds: int) -> str:
    """Prometheus's ``humanizeDuration`` for whole seconds above a day."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}d {hours}h {minutes}m {secs}s"


def _annotations(alert: str, labels: dict[str, str], value: int) -> dict[str, str]:
    """The rule's annotations rendered for one series and value (the templates it uses)."""
    rendered = {}
    for key, text in _rule(alert)["annotations"].items():
        text = text.replace("{{ $value | humanizeDuration }}", _humanize_duration(value))
        for name, label in labels.items():
            text = text.replace(f"{{{{ $labels.{name} }}}}", label)
        rendered[key] = text
    return rendered


def _rule(alert: str) -> dict:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return next(r for g in groups for r in g["rules"] if r.get("alert") == alert)


def _alert_metrics(alert: str) -> set[str]:
    expr = _rule(alert)["expr"]
    return {m for m in ("trending_model_age_seconds", "trending_data_age_seconds") if m in expr}


def _alert_labels(alert: str, labels: dict[str, str]) -> dict[str, str]:
    """Labels an alert carries: its rule's labels plus the series labels its expression keeps."""
    kept = {k: v for k, v in labels.items() if alert == "DataStale" or k in ("model", "alias")}
    return {**kept, **_rule(alert)["labels"]}


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not installed: apt-get install -y prometheus (Debian package)")
    return path


@pytest.mark.parametrize(("age_by", "expect"), [(0.0, False), (DAYS_40, True)])
def test_staleness_alerts_fire_on_the_exporters_own_series(
    tmp_path: Path, age_by: float, expect: bool
) -> None:
    samples = _scraped(tmp_path)
    names = {name for name, _, _ in samples}
    assert {"trending_model_age_seconds", "trending_data_age_seconds"} <= names, names
    samples = [
        s for s in samples if s[0] in _alert_metrics("ModelStale") | _alert_metrics("DataStale")
    ]
    test = _promtool_test(tmp_path, samples, age_by=age_by, expect=expect)
    result = subprocess.run([_promtool(), "test", "rules", test], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
