"""The zone the projection keeps the dashboard's days in (casework.config.reporting_env)."""

from __future__ import annotations

import pytest

from casework.config import ConfigError, Settings, reporting_env


def test_an_unreadable_policy_leaves_the_days_unkept_and_the_reports_working(tmp_path):
    # A report or the projector needs no SLA policy: a missing one means the console counts the cases.
    settings = Settings(data_dir=tmp_path, sla_policy=str(tmp_path / "no-such-policy.toml"))
    assert reporting_env(settings)["CASEWORK_DASHBOARD_ZONE"] == ""


def test_the_shipped_policy_gives_its_calendar_zone_and_the_setting_wins(tmp_path):
    assert reporting_env(Settings(data_dir=tmp_path))["CASEWORK_DASHBOARD_ZONE"] == "Asia/Shanghai"
    settings = Settings(data_dir=tmp_path, console_timezone="Europe/Berlin")
    assert reporting_env(settings)["CASEWORK_DASHBOARD_ZONE"] == "Europe/Berlin"


def test_a_misspelt_console_zone_is_still_an_error(tmp_path):
    with pytest.raises(ConfigError, match="Mars/Olympus"):
        reporting_env(Settings(data_dir=tmp_path, console_timezone="Mars/Olympus"))
