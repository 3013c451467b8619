"""The rule table at the end of docs/sla.md is the generator's output, and says what the policy picks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from casework.policy import load_policy
from casework.sla_table import END, START, markdown, rows, text, write_into
from domain.model import Category, Channel, Priority, Tier
from domain.sla import SlaPolicy

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "sla.md"
SHIPPED = load_policy(None)


def doc_block() -> str:
    page = DOC.read_text()
    assert START in page and END in page, "run: python -m casework.sla_table --write docs/sla.md"
    return START + page.split(START, 1)[1].split(END, 1)[0] + END + "\n"


def test_the_doc_ends_with_the_generators_table():
    assert doc_block() == markdown(SHIPPED), "stale: python -m casework.sla_table --write docs/sla.md"
    assert DOC.read_text().rstrip().endswith(END)


def test_the_command_line_prints_the_same_table():
    out = subprocess.run([sys.executable, "-m", "casework.sla_table", "--markdown"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert out == markdown(SHIPPED)
    plain = subprocess.run([sys.executable, "-m", "casework.sla_table"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout
    assert plain == text(SHIPPED) and len(plain.splitlines()) == 1 + 4 * 4 * 9 * 8


# Spot checks, written by hand from the policy file (not from the generator).
def test_urgent_warranty_gets_the_urgent_targets():
    for row in rows(SHIPPED):
        if row.priority is Priority.urgent and row.category is Category.warranty:
            assert row.rule.describe() == "priority=urgent"
            assert row.targets == (0.25, 0.5, 4) and row.rule.calendar == "round_the_clock"
    assert "| urgent | C | warranty | any | priority=urgent | 0.25 h | 0.5 h | 4 h | round_the_clock |" in doc_block()


def test_a_key_account_return_visit_gets_two_weeks_round_the_clock():
    row = next(r for r in rows(SHIPPED) if (r.priority, r.tier, r.category, r.channel) == (
        Priority.normal, Tier.key_account, Category.return_visit, Channel.on_site))
    assert row.rule.describe() == "category=return_visit"
    assert row.targets == (72, 72, 336) and row.rule.calendar == "round_the_clock"
    assert ("| normal | key_account | return_visit | any | category=return_visit | 72 h | 72 h | 336 h "
            "| round_the_clock |") in doc_block()


def test_normal_c_email_fault_gets_the_catch_all():
    row = next(r for r in rows(SHIPPED) if (r.priority, r.tier, r.category, r.channel) == (
        Priority.normal, Tier.C, Category.fault, Channel.email))
    assert row.rule.describe() == "catch-all" and row.targets == (8, 8, 48) and row.rule.calendar == "business"
    assert "| normal | C | fault | any | catch-all | 8 h | 8 h | 48 h | business |" in doc_block()


def test_more_rows_by_hand():
    want = {  # (priority, tier, category) -> (rule, targets): precedence priority > category > tier
        ("high", "key_account", "fault"): ("priority=high", (2, 4, 16)),
        ("normal", "key_account", "warranty"): ("category=warranty", (12, 12, 72)),
        ("normal", "A", "enquiry"): ("tier=A", (4, 6, 32)),
        ("low", "A", "return_visit"): ("priority=low", (24, 24, 120)),
        ("urgent", "key_account", "return_visit"): ("priority=urgent", (0.25, 0.5, 4)),
    }
    found = {(r.priority.value, r.tier.value, r.category.value): (r.rule.describe(), r.targets)
             for r in rows(SHIPPED) if r.channel is Channel.phone}
    assert {k: found[k] for k in want} == want


def test_every_combination_appears_exactly_once_in_the_markdown():
    lines = [line for line in markdown(SHIPPED).splitlines()
             if line.startswith("| ") and line.count("|") == 10 and not line.startswith("| priority")]
    covered = []
    for line in lines:
        p, t, cat, channels = (cell.strip() for cell in line.strip("|").split("|")[:4])
        for ch in ([c.value for c in Channel] if channels == "any" else channels.split(", ")):
            covered.append((p, t, cat, ch))
    assert sorted(covered) == sorted((p.value, t.value, c.value, ch.value)
                                     for p in Priority for t in Tier for c in Category for ch in Channel)


def test_a_channel_rule_splits_the_row():
    policy = SlaPolicy.model_validate({
        **SHIPPED.model_dump(), "targets": [*SHIPPED.model_dump()["targets"], {
            "channel": "phone", "first_response_hours": 1, "next_response_hours": 1, "resolution_hours": 8,
            "source": "phone line"}]})
    table = markdown(policy)
    assert "| normal | C | fault | phone | channel=phone | 1 h | 1 h | 8 h | business |" in table
    assert ("| normal | C | fault | email, chat, web, sms, on_site, social, other | catch-all | 8 h | 8 h | 48 h "
            "| business |") in table
    assert "| urgent | C | fault | any | priority=urgent |" in table  # priority outweighs channel


def test_writing_the_table_replaces_only_its_block():
    page = "# T\n\ntext\n\n## Rule table\n\n" + START + "\nold\n" + END + "\n"
    assert write_into(page, markdown(SHIPPED)) == "# T\n\ntext\n\n## Rule table\n\n" + markdown(SHIPPED)
    assert write_into("# T\n", "X\n") == "# T\n\n## Rule table\n\nX\n"
