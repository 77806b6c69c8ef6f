"""Prometheus and Alertmanager as local processes: the one place that finds and starts them.

Two uses. The demo, the closed-loop integration test and the loop benchmark run the repository's
Prometheus, rules and Alertmanager configs rewired for loopback (:func:`running_monitoring`), so
all run exactly the shipped rules and routing with only ports, intervals and timers changed. The
local canary stack runs a bare Prometheus scraping the router (:func:`running_prometheus`). Both
build Prometheus's command line with :func:`prometheus_command`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import yaml

from cli.processes import free_port, running_process

# Debian's package installs Alertmanager as prometheus-alertmanager; upstream tarballs as alertmanager.
ALERTMANAGER_NAMES = ("prometheus-alertmanager", "alertmanager")
INSTALL_HINT = "apt-get install -y prometheus prometheus-alertmanager (Debian packages)"


class MonitoringBinariesMissingError(RuntimeError):
    """Prometheus or Alertmanager is not on PATH; the message says what to install."""


def prometheus_binary(which: Callable[[str], str | None] = shutil.which) -> str | None:
    """Path of the ``prometheus`` executable on PATH, or None."""
    return which("prometheus")


def find_monitoring_binaries(
    which: Callable[[str], str | None] = shutil.which,
) -> dict[str, str]:
    """Paths of the ``prometheus`` and ``alertmanager`` executables on PATH.

    Alertmanager is looked up as ``prometheus-alertmanager`` (Debian) first, then ``alertmanager``.
    Raises MonitoringBinariesMissingError naming what is missing and how to install it.
    """
    found = {
        "prometheus": prometheus_binary(which),
        "alertmanager": next(filter(None, map(which, ALERTMANAGER_NAMES)), None),
    }
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise MonitoringBinariesMissingError(
            f"{' and '.join(missing)} not found on PATH: {INSTALL_HINT}"
        )
    return {name: str(path) for name, path in found.items()}


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


def monitoring_commands(
    binaries: dict[str, str], configs: dict[str, Path], ports: dict[str, int], state_dir: Path
) -> dict[str, list[str]]:
    """Command lines of Alertmanager and Prometheus on loopback with the rewired configs.

    Args:
        binaries: From :func:`find_monitoring_binaries`.
        configs: From :func:`write_local_monitoring_configs`.
        ports: Must hold ``alertmanager`` and ``prometheus``.
        state_dir: Their data folders go below it.
    """
    return {
        "alertmanager": [
            binaries["alertmanager"],
            f"--config.file={configs['alertmanager']}",
            f"--storage.path={state_dir / 'alertmanager'}",
            f"--web.listen-address=127.0.0.1:{ports['alertmanager']}",
            "--cluster.listen-address=",  # no gossip port: one instance, and no clash with others
        ],
        "prometheus": prometheus_command(
            binaries["prometheus"], configs["prometheus"], ports["prometheus"], state_dir
        ),
    }


def prometheus_command(binary: str, config: Path, port: int, state_dir: Path) -> list[str]:
    """Prometheus on ``127.0.0.1:port`` with ``config``, its data in ``state_dir/prometheus``."""
    return [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={state_dir / 'prometheus'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]


@contextmanager
def running_monitoring(
    binaries: dict[str, str],
    configs: dict[str, Path],
    ports: dict[str, int],
    state_dir: Path,
    log_dir: Path,
) -> Iterator[dict[str, str]]:
    """Run Alertmanager, then Prometheus, until the block ends; yield their base URLs.

    Each is ready (``/-/ready`` answers 200) before the block starts; both are stopped however it
    ends. Logs go to ``log_dir/alertmanager.log`` and ``log_dir/prometheus.log``.
    """
    urls = {name: f"http://127.0.0.1:{ports[name]}" for name in ("alertmanager", "prometheus")}
    with ExitStack() as stack:
        for name, command in monitoring_commands(binaries, configs, ports, state_dir).items():
            stack.enter_context(
                running_process(command, f"{urls[name]}/-/ready", log_dir / f"{name}.log")
            )
        yield urls


@contextmanager
def running_prometheus(
    targets: dict[str, str], workdir: Path, *, scrape_interval: str = "1s", timeout: float = 60.0
) -> Iterator[str]:
    """Run a bare Prometheus scraping ``{job: host:port}`` until the block ends; yield its URL.

    Raises:
        MonitoringBinariesMissingError: No ``prometheus`` binary (the message says what to
            install).
        ServiceFailedError: It exited or did not become ready.
    """
    binary = prometheus_binary()
    if binary is None:
        raise MonitoringBinariesMissingError(f"prometheus not found on PATH: {INSTALL_HINT}")
    workdir.mkdir(parents=True, exist_ok=True)
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [target]}]}
            for job, target in targets.items()
        ],
    }
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = prometheus_command(binary, config_path, port, workdir)
    with running_process(command, f"{url}/-/ready", workdir / "prometheus.log", timeout=timeout):
        yield url
