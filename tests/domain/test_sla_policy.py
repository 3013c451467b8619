"""The SLA policy file: the most specific rule wins, and a bad entry is named."""

from __future__ import annotations

from datetime import timedelta

import pytest

from casework.policy import DEFAULT_POLICY, PolicyError, load_policy


def test_the_shipped_policy_loads_and_the_most_specific_rule_wins():
    policy = load_policy()
    assert policy.terms_for("urgent", "C", "fault", "email").targets["first_response"] == timedelta(minutes=15)
    warranty = policy.terms_for("normal", "B", "warranty", "phone")
    assert warranty.targets["first_response"] == timedelta(hours=12) and warranty.calendar.always_open
    assert policy.terms_for("normal", "C", "enquiry", "web").targets["resolution"] == timedelta(hours=48)
    assert [level.name for level in policy.ladder] == ["agent", "team_lead", "service_manager", "emergency_response"]


@pytest.mark.parametrize("change,named", [
    (('first_response_hours = 8', 'first_response_hours = -1'), "targets.0.first_response_hours"),
    (('calendar = "round_the_clock"', 'calendar = "night_shift"'), "night_shift"),
    (('warn_at = [0.5, 0.75, 0.9]', 'warn_at = [0.5, 1.5]'), "between 0 and 1"),
    (('timezone = "Asia/Shanghai"', 'timezone = "Asia/Atlantis"'), "calendars.business.timezone"),
])
def test_a_bad_policy_entry_is_named(tmp_path, change, named):
    bad = tmp_path / "policy.toml"
    bad.write_text(DEFAULT_POLICY.read_text().replace(*change, 1))
    with pytest.raises(PolicyError, match=named.replace(".", r"\.")):
        load_policy(bad)


def test_holidays_come_from_an_ics_file_beside_the_policy(tmp_path):
    (tmp_path / "cn.ics").write_text("BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20261001\n"
                                     "DTEND;VALUE=DATE:20261004\nEND:VEVENT\nEND:VCALENDAR\n")
    policy = tmp_path / "policy.toml"
    policy.write_text(DEFAULT_POLICY.read_text().replace('holidays_source = "cn"', 'holidays_ics = "cn.ics"'))
    business = load_policy(policy).calendars["business"]
    assert [str(d) for d in business.holidays] == ["2026-10-01", "2026-10-02", "2026-10-03"]
    with pytest.raises(PolicyError, match="holidays_ics"):
        (tmp_path / "cn.ics").unlink()
        load_policy(policy)
