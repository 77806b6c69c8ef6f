"""Finding the local Prometheus/Alertmanager and the command lines that start them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cli.local_monitoring import (
    MONITORING,
    MonitoringBinariesMissingError,
    alertmanager_command,
    find_monitoring_binaries,
    prometheus_command,
    write_alertmanager_config,
    write_prometheus_config,
)


def fake_which(*present: str):
    return lambda name: f"/opt/bin/{name}" if name in present else None


def test_debian_alertmanager_name_is_preferred() -> None:
    which = fake_which("prometheus", "prometheus-alertmanager", "alertmanager")
    assert find_monitoring_binaries(which) == {
        "prometheus": "/opt/bin/prometheus",
        "alertmanager": "/opt/bin/prometheus-alertmanager",
    }


def test_upstream_alertmanager_name_is_found() -> None:
    found = find_monitoring_binaries(fake_which("prometheus", "alertmanager"))
    assert found["alertmanager"] == "/opt/bin/alertmanager"


@pytest.mark.parametrize(
    ("present", "named"),
    [(("prometheus",), "alertmanager"), (("alertmanager",), "prometheus")],
)
def test_missing_binary_is_named_with_the_install_command(
    present: tuple[str, ...], named: str
) -> None:
    with pytest.raises(MonitoringBinariesMissingError, match=f"{named} not found") as info:
        find_monitoring_binaries(fake_which(*present))
    assert "apt-get install" in str(info.value)


def test_commands_listen_on_a_free_loopback_port_with_the_configs_and_state(
    tmp_path: Path,
) -> None:
    config = tmp_path / "x.yml"
    alertmanager = alertmanager_command("/p/am", config, tmp_path / "state")
    assert alertmanager[0] == "/p/am"
    assert f"--config.file={config}" in alertmanager
    assert "--web.listen-address=127.0.0.1:0" in alertmanager
    assert "--cluster.listen-address=" in alertmanager
    assert f"--storage.path={tmp_path / 'state' / 'alertmanager'}" in alertmanager
    prometheus = prometheus_command("/p/prometheus", config, tmp_path / "state")
    assert prometheus[0] == "/p/prometheus"
    assert f"--config.file={config}" in prometheus
    assert "--web.listen-address=127.0.0.1:0" in prometheus
    assert f"--storage.tsdb.path={tmp_path / 'state' / 'prometheus'}" in prometheus


def test_configs_point_at_the_addresses_the_services_got(tmp_path: Path) -> None:
    token = tmp_path / "token"
    alertmanager = yaml.safe_load(
        write_alertmanager_config(MONITORING, tmp_path, "127.0.0.1:4101", token).read_text()
    )
    receiver = next(r for r in alertmanager["receivers"] if r["name"] == "retrain-trigger")
    webhook = receiver["webhook_configs"][0]
    assert webhook["url"] == "http://127.0.0.1:4101/alerts"
    assert webhook["http_config"]["authorization"]["credentials_file"] == str(token)
    targets = {"drift": "127.0.0.1:4102", "predictor": "127.0.0.1:4103"}
    prometheus = yaml.safe_load(
        write_prometheus_config(
            MONITORING, tmp_path, targets, "127.0.0.1:4104", drift_alert_for="5s"
        ).read_text()
    )
    scraped = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in prometheus["scrape_configs"]
    }
    assert scraped == {"predictor": ["127.0.0.1:4103"], "drift": ["127.0.0.1:4102"]}
    assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "127.0.0.1:4104"
    ]


def test_bare_prometheus_without_the_binary_says_what_to_install(tmp_path, monkeypatch) -> None:
    from cli import local_monitoring

    monkeypatch.setattr(local_monitoring, "prometheus_binary", lambda: None)
    with (
        pytest.raises(MonitoringBinariesMissingError, match=r"prometheus not found.*apt-get"),
        local_monitoring.running_prometheus({"router": "127.0.0.1:1"}, tmp_path),
    ):
        pass
