"""The reporting tables: a public interface for analysts (documented in docs/reporting.md).

Times are ISO 8601 UTC text (they sort and compare as text in SQLite and PostgreSQL alike);
durations are seconds, both in calendar time and in the case's business time.
"""

from domain.clock_catalogue import CATALOGUE

CLOCK_NAMES = tuple(spec.name for spec in CATALOGUE)  # one breached column per clock of the catalogue

TABLES = {
    # The projection's own memory of each case (projections/memory.py): what applying its next
    # event needs, as JSON.
    "case_state": """
        case_id TEXT PRIMARY KEY,
        state TEXT NOT NULL""",
    # The calendars pinned on cases, each once (the memory names its case's by key).
    "sla_calendars": """
        calendar_key TEXT PRIMARY KEY,
        calendar TEXT NOT NULL""",
    "cases": """
        case_id TEXT PRIMARY KEY,
        source_system TEXT, external_id TEXT,
        stage TEXT NOT NULL, priority TEXT NOT NULL, tier TEXT NOT NULL, category TEXT NOT NULL,
        channel TEXT NOT NULL, customer_id TEXT NOT NULL,
        team TEXT, assignee TEXT,
        opened_at TEXT NOT NULL, first_response_at TEXT, solved_at TEXT, closed_at TEXT,
        closure_reason TEXT,
        first_response_seconds REAL, first_response_business_seconds REAL,
        resolution_seconds REAL, resolution_business_seconds REAL,
        escalation_level INTEGER NOT NULL, reopen_count INTEGER NOT NULL,
        clarification_rounds INTEGER NOT NULL, notes_count INTEGER NOT NULL,
        first_contact_resolution INTEGER NOT NULL,
        sla_policy_version TEXT,
        """ + "".join(f"{name}_breached INTEGER NOT NULL, " for name in CLOCK_NAMES) + """
        satisfaction_score REAL,
        updated_at TEXT NOT NULL, events INTEGER NOT NULL""",
    "sla_clocks": """
        case_id TEXT NOT NULL, clock TEXT NOT NULL, cycle INTEGER NOT NULL,
        state TEXT NOT NULL, target_seconds REAL NOT NULL, started_at TEXT NOT NULL, due TEXT,
        elapsed_business_seconds REAL NOT NULL, paused_seconds REAL NOT NULL,
        met_at TEXT, breached_at TEXT, breached INTEGER NOT NULL, warned_shares TEXT NOT NULL,
        PRIMARY KEY (case_id, clock, cycle)""",
    "escalations": """
        case_id TEXT NOT NULL, seq INTEGER NOT NULL, at TEXT NOT NULL, kind TEXT NOT NULL,
        level INTEGER NOT NULL, level_name TEXT, owner TEXT, cause TEXT, clock TEXT, reason TEXT,
        actor_id TEXT NOT NULL, actor_role TEXT NOT NULL,
        PRIMARY KEY (case_id, seq)""",
    "agent_activity": """
        case_id TEXT NOT NULL, seq INTEGER NOT NULL, at TEXT NOT NULL, actor_id TEXT NOT NULL,
        actor_role TEXT NOT NULL, event_type TEXT NOT NULL, stage_after TEXT NOT NULL,
        team TEXT,
        PRIMARY KEY (case_id, seq)""",
    "callbacks": """
        case_id TEXT NOT NULL, attempt INTEGER NOT NULL, at TEXT NOT NULL, channel TEXT NOT NULL,
        survey_skipped TEXT, customer_id TEXT NOT NULL,
        PRIMARY KEY (case_id, attempt, at)""",
    "surveys": """
        case_id TEXT NOT NULL, round INTEGER NOT NULL, at TEXT NOT NULL, customer_id TEXT NOT NULL,
        overall REAL NOT NULL, scale TEXT NOT NULL, original_overall REAL, safety_incident INTEGER NOT NULL,
        team TEXT, assignee TEXT, category TEXT NOT NULL,
        PRIMARY KEY (case_id, round)""",
    # The subject, sealed with the customer's key, for the HTTP API's text search (projections/subjects.py).
    "case_subjects": """
        case_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, subject TEXT NOT NULL""",
    # Pre-aggregated for the agents report (one row per staff member, kept by the projection as it
    # appends agent_activity rows), so the report does not count distinct cases over every action.
    "agent_totals": """
        actor_id TEXT NOT NULL, actor_role TEXT NOT NULL, actions INTEGER NOT NULL,
        cases_touched INTEGER NOT NULL,
        PRIMARY KEY (actor_id, actor_role)""",
    "survey_scores": """
        case_id TEXT NOT NULL, round INTEGER NOT NULL, dimension TEXT NOT NULL, score REAL NOT NULL,
        original REAL NOT NULL,
        PRIMARY KEY (case_id, round, dimension)""",
    # The manager's dashboard by day in the console's zone (projections/dashboard.py): per day, team
    # and channel, the count of each test's cases, the scores' exact sum (integer text, in 2**-60),
    # and the durations in hours, sorted (hex of little-endian doubles).
    "dashboard_days": """
        zone TEXT NOT NULL, local_day TEXT NOT NULL, team TEXT NOT NULL, channel TEXT NOT NULL,
        n_opened INTEGER NOT NULL, n_sla_held INTEGER NOT NULL, n_sla_met INTEGER NOT NULL,
        n_breached INTEGER NOT NULL, n_responded INTEGER NOT NULL, n_resolved INTEGER NOT NULL,
        n_closed INTEGER NOT NULL, n_fcr INTEGER NOT NULL, n_reopened INTEGER NOT NULL,
        n_surveyed INTEGER NOT NULL, n_below_target INTEGER NOT NULL, n_open INTEGER NOT NULL,
        score_sum TEXT NOT NULL, score_odd INTEGER NOT NULL, first_response_h TEXT NOT NULL,
        resolution_h TEXT NOT NULL,
        PRIMARY KEY (zone, local_day, team, channel)""",
    # The zone dashboard_days is complete for (one row, or none: not kept), and the log position it
    # is complete up to: a writer that does not keep the days (an older version's projection or
    # rebuild) moves the tracking position past it, and the days are derived again / not read.
    "dashboard_zone": """
        zone TEXT PRIMARY KEY, position BIGINT NOT NULL DEFAULT 0""",
}

# Columns earlier versions had: dropped from live tables when the view opens. customer_name held the
# customer's name, personal data no report needs (docs/security-data.md); after the upgrade, a
# rebuild (or a fresh reporting.db) leaves no trace of it in the file's free pages either.
RETIRED_COLUMNS = {"cases": ("customer_name",)}

# Indexes earlier versions had: dropped when the view opens, as each cost the projection b-tree
# writes per row (issue 14: together 16 % of the bytes a catch-up writes on SQLite). clocks_due was
# the leading columns of clocks_running, which serves every query it served (at-risk's count reads
# the wider entries: a few ms more); activity_actor (agent_activity by actor and time) served no
# report or page since agent_totals keeps the agents report's counts.
# clocks_running, clocks_case and clocks_clock held an entry for every clock of every case; the
# queries they served read only running clocks, or only next-response cycles, so their partial
# successors (running_by_due, running_by_case, next_response_cycles) serve them with an entry for
# those alone: a catch-up of 30,000 events wrote 113 -> 76 MB on SQLite (a clock's row is mostly
# written once it has stopped, and then enters no index but the primary key).
# cases_report and cases_dashboard, two copies of most columns of a case led by opened_at, are one
# now (cases_figures, their columns together): 76 -> 68 MB.
RETIRED_INDEXES = ("clocks_due", "activity_actor", "clocks_running", "clocks_case", "clocks_clock",
                   "cases_report", "cases_dashboard")

INDEXES = {
    # Kept though cases_figures starts with opened_at: counting a range of cases reads these narrow
    # entries (a third of the time), and, cases being opened in time order, it is appended to.
    "cases_opened": "cases (opened_at)",
    "surveys_customer": "surveys (customer_id, at)",
    "subjects_customer": "case_subjects (customer_id)",
    # Every column the case reports (sla, outcomes, satisfaction, complaints) group and count by, and
    # everything the console's dashboard reads of a case (figures.dashboard, where dashboard_days are
    # not kept in its zone: its tests, durations and score), by opened_at: they scan this narrow
    # index instead of the wide rows, a date range a part of it. One index for both (see
    # RETIRED_INDEXES).
    "cases_figures": "cases (opened_at, priority, tier, team, assignee, channel, category, sla_policy_version, "
                     "closed_at, first_contact_resolution, reopen_count, satisfaction_score, first_response_seconds, "
                     "resolution_seconds, " + ", ".join(f"{name}_breached" for name in CLOCK_NAMES) + ")",
    # at-risk: running clocks by due time, in the report's order, with what it shows of the clock.
    # Partial, as the two below: an entry only for a clock that is running (a few per open case),
    # none for the met, breached-and-stopped or cancelled ones, most of them (see RETIRED_INDEXES).
    "running_by_due": "sla_clocks (due, case_id, clock, breached) WHERE state = 'running'",
    # The next-response cycles (next_replies) without a scan of every clock.
    "next_response_cycles": "sla_clocks (case_id, state, breached) WHERE clock = 'next_response'",
    # Open cases (backlog, and the agents report's open cases per assignee) without a scan of all.
    "cases_open": "cases (closed_at, assignee, stage, opened_at)",
    # A case's running clocks (the queues' and the board's next due time, the API's at-risk
    # filter): without it the planner reads every running clock for each case.
    "running_by_case": "sla_clocks (case_id, due, breached) WHERE state = 'running'",
    # The times report's percentiles by rank, by priority (its default grouping), without a sort.
    **{f"cases_priority_{column}": f"cases (priority, {column})" for column in (
        "first_response_seconds", "first_response_business_seconds", "resolution_seconds",
        "resolution_business_seconds")},
}


def create_statements() -> list[str]:
    return ([f"CREATE TABLE IF NOT EXISTS {name} ({cols}\n)" for name, cols in TABLES.items()]
            + [f"CREATE INDEX IF NOT EXISTS {name} ON {on}" for name, on in INDEXES.items()])
