"""The repository's Prometheus, rules and Alertmanager configs, rewired for processes on loopback.

Used by the demo and the closed-loop integration test, so both run exactly the shipped rules
and routing with only ports, intervals and timers changed.
"""

from __future__ import annotations

from pathlib import Path

import yaml


def write_local_monitoring_configs(
    monitoring_dir: Path,
    out_dir: Path,
    ports: dict[str, int],
    token_file: Path,
    *,
    drift_alert_for: str,
    interval: str = "1s",
    alert_timers: dict[str, str] | None = None,
) -> dict[str, Path]:
    """Write rules.yml, prometheus.yml and alertmanager.yml into ``out_dir``; return their paths.

    Args:
        monitoring_dir: The repository's ``monitoring/`` folder.
        out_dir: Where the rewired copies go.
        ports: Loopback port per scrape job name (``drift``, ``trigger``, ...) and ``alertmanager``;
            scrape jobs without a port are left out.
        token_file: The retrain trigger's bearer token, read by Alertmanager.
        drift_alert_for: ``for`` of the DriftDetected alert (5m in production).
        interval: Scrape and rule evaluation interval.
        alert_timers: Overrides of the retrain route's group_wait / group_interval / repeat_interval.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    rules = yaml.safe_load((monitoring_dir / "rules" / "trending.rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == "DriftDetected":
                rule["for"] = drift_alert_for
    (out_dir / "rules.yml").write_text(yaml.safe_dump(rules))

    prometheus = yaml.safe_load((monitoring_dir / "prometheus.yml").read_text())
    prometheus["global"].update(scrape_interval=interval, evaluation_interval=interval)
    prometheus["rule_files"] = [str(out_dir / "rules.yml")]
    targets = prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]
    targets["targets"] = [f"127.0.0.1:{ports['alertmanager']}"]
    prometheus["scrape_configs"] = [
        {**job, "static_configs": [{"targets": [f"127.0.0.1:{ports[job['job_name']]}"]}]}
        for job in prometheus["scrape_configs"]
        if job["job_name"] in ports
    ]
    (out_dir / "prometheus.yml").write_text(yaml.safe_dump(prometheus))

    alertmanager = yaml.safe_load((monitoring_dir / "alertmanager.yml").read_text())
    route = alertmanager["route"]["routes"][0]
    route.update(alert_timers or {})
    receiver = next(r for r in alertmanager["receivers"] if r["name"] == route["receiver"])
    webhook = receiver["webhook_configs"][0]
    webhook["url"] = f"http://127.0.0.1:{ports['trigger']}/alerts"
    webhook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    (out_dir / "alertmanager.yml").write_text(yaml.safe_dump(alertmanager))
    return {name: out_dir / f"{name}.yml" for name in ("rules", "prometheus", "alertmanager")}
