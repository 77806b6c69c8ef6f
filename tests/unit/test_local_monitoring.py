"""Finding the local Prometheus/Alertmanager and the command lines that start them."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.local_monitoring import (
    MonitoringBinariesMissingError,
    find_monitoring_binaries,
    monitoring_commands,
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


def test_commands_use_the_rewired_configs_ports_and_state(tmp_path: Path) -> None:
    configs = {name: tmp_path / f"{name}.yml" for name in ("prometheus", "alertmanager")}
    commands = monitoring_commands(
        {"prometheus": "/p/prometheus", "alertmanager": "/p/am"},
        configs,
        {"prometheus": 9101, "alertmanager": 9102},
        tmp_path / "state",
    )
    assert commands["alertmanager"][0] == "/p/am"
    assert f"--config.file={configs['alertmanager']}" in commands["alertmanager"]
    assert "--web.listen-address=127.0.0.1:9102" in commands["alertmanager"]
    assert "--cluster.listen-address=" in commands["alertmanager"]
    assert f"--storage.path={tmp_path / 'state' / 'alertmanager'}" in commands["alertmanager"]
    assert commands["prometheus"][0] == "/p/prometheus"
    assert f"--config.file={configs['prometheus']}" in commands["prometheus"]
    assert "--web.listen-address=127.0.0.1:9101" in commands["prometheus"]
    assert f"--storage.tsdb.path={tmp_path / 'state' / 'prometheus'}" in commands["prometheus"]


def test_bare_prometheus_without_the_binary_says_what_to_install(tmp_path, monkeypatch) -> None:
    from cli import local_monitoring

    monkeypatch.setattr(local_monitoring, "prometheus_binary", lambda: None)
    with (
        pytest.raises(MonitoringBinariesMissingError, match=r"prometheus not found.*apt-get"),
        local_monitoring.running_prometheus({"router": "127.0.0.1:1"}, tmp_path),
    ):
        pass
