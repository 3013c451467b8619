"""The SLA policy file: the most specific rule wins, and a bad entry is named."""

from __future__ import annotations

import re
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
    # Issue 10 review (r08, r08b): files that would load and mean something else.
    (('first_response_hours = 8\n', 'first_response_hours = true\n'),
     "targets.0.first_response_hours: Input should be a valid number (got True)"),
    (('attempts = 3', 'attempts = true'), "follow_up.attempts: Input should be a valid integer (got True)"),
    (('first_response_hours = 8\n', 'first_response_hours = "8"\n'), "targets.0.first_response_hours"),
    (('escalate_on_warning = []', 'escalate_on_warning = [0.8]'),
     "escalate_on_warning 0.8 is not a warning share (warn_at: 0.5, 0.75, 0.9): it would never escalate"),
    (('warn_at = [0.5, 0.75, 0.9]', 'warn_at = [0.5, 0.5, 0.9]'), "warn_at lists 0.5 more than once"),
    (('rules = [{ tier = "key_account", delay_hours = 4 }]',
      'rules = [{ tier = "key_account", delay_hours = 4 }, { category = "complaint", delay_hours = 48 }]'),
     "follow_up.rules[0] (tier=key_account) and rules[1] (category=complaint) are as specific as each other "
     "and both apply to tier=key_account, category=complaint"),
    (('rules = [{ tier = "key_account", delay_hours = 4 }]',
      'rules = [{ tier = "key_account", delay_hours = 4 }, { tier = "key_account", delay_hours = 8 }]'),
     "follow_up.rules[0] and rules[1] both apply to tier=key_account"),
])
def test_a_bad_policy_entry_is_named(tmp_path, change, named):
    bad = tmp_path / "policy.toml"
    bad.write_text(DEFAULT_POLICY.read_text().replace(*change, 1))
    with pytest.raises(PolicyError, match=re.escape(named)):
        load_policy(bad)


def test_equally_specific_follow_up_rules_load_once_a_rule_says_which_holds(tmp_path):
    """Key-account complaints: the rule naming both wins over the tier rule and the category rule,
    in any file order; a key account's fault gets the tier rule's 4 h, a B customer's complaint 48 h."""
    rules = ['{ tier = "key_account", delay_hours = 4 }', '{ category = "complaint", delay_hours = 48 }',
             '{ tier = "key_account", category = "complaint", delay_hours = 2 }']
    for order in (rules, rules[::-1]):
        path = tmp_path / "policy.toml"
        path.write_text(DEFAULT_POLICY.read_text().replace('rules = [{ tier = "key_account", delay_hours = 4 }]',
                                                           f"rules = [{', '.join(order)}]"))
        follow_up = load_policy(path).follow_up
        assert [follow_up.delay_for(t, c) for t, c in (("key_account", "complaint"), ("key_account", "fault"),
                                                        ("B", "complaint"), ("B", "fault"))] == [
            timedelta(hours=2), timedelta(hours=4), timedelta(hours=48), timedelta(hours=24)]


def test_yaml_numbers_are_the_numbers_written(tmp_path):
    """YAML 1.1 reads 1:30 as 90 (base 60): refused here as a string where hours are due; 1.5 is 1.5."""
    text = """version: y1
calendars: {c: {timezone: UTC, always_open: yes}}
targets:
  - {first_response_hours: HOURS, next_response_hours: 2, resolution_hours: 8, calendar: c}
ladder: [{name: agent}, {name: lead}]
"""
    path = tmp_path / "policy.yaml"
    path.write_text(text.replace("HOURS", "1:30"))
    with pytest.raises(PolicyError, match=re.escape("targets.0.first_response_hours: Input should be a valid number "
                                                    "(got '1:30')")):
        load_policy(path)
    path.write_text(text.replace("HOURS", "1.5"))
    policy = load_policy(path)
    assert policy.targets[0].first_response_hours == 1.5 and policy.calendars["c"].always_open


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
