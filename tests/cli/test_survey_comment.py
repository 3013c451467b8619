"""A survey's comment, end to end: given on the command line, kept in the event (sealed with the
customer's key, like every free text), in the case's state, withheld from the reporting tables,
printed by `casework show`, and gone once the customer is forgotten. `--parts-used` likewise reaches
the service report."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from casework.config import reporting_env
from domain.personal import FORGOTTEN
from projections.runner import ReportProjection, open_view
from tests.cli.helpers import cli_engine

COMMENT = "师傅很专业 — thanks, Li"


async def test_the_comment_is_kept_end_to_end(temporal_env, tmp_path):
    async with cli_engine(temporal_env, tmp_path / "data") as engine:
        r = await engine.cli("open", "--customer-id", "c-1", "--customer-name", "Wang Fang", "--channel", "phone",
                             "--category", "fault", "--subject", "Boiler leaks", "--json")
        assert r.code == 0, r.err
        cid = json.loads(r.out)["case_id"]
        visit = (datetime.now(UTC) + timedelta(days=1)).isoformat(timespec="seconds")
        for args in (["respond", cid, "--message", "Engineer on the way"],
                     ["book-appointment", cid, "--at", visit, "--place", "Flat 3", "--need", "Fix the leak"],
                     ["confirm-appointment", cid, "--actor", "customer:c-1"],
                     ["record-service-report", cid, "--work-done", "Replaced the seal", "--parts-used", "seal 22mm",
                      "--parts-used", "PTFE tape"],
                     ["propose-solution", cid, "--summary", "Seal replaced"],
                     ["start-follow-up", cid, "--follow-up-hours", "48"]):
            r = await engine.cli(*args)
            assert r.code == 0, (args, r.err)
        r = await engine.cli("confirm-solution", cid, "--actor", "customer:c-1", "--survey-scale", "1-5",
                             "--score", "response_speed=5", "--score", "problem_solving=4", "--score", "attitude=5",
                             "--survey-comment", COMMENT, "--json")
        assert r.code == 0, r.err
        [survey] = json.loads(r.out)["surveys"]
        assert (survey["comment"], survey["overall"], survey["original"]["problem_solving"]) == (COMMENT, 91.7, 4)

        # The event, as the store holds it; the case's state, as the engine answers it.
        [recorded] = [e for e in engine.store.history(cid) if e.type == "SurveyRecorded"]
        assert recorded.survey.comment == COMMENT
        [report] = [e for e in engine.store.history(cid) if e.type == "ServiceReportRecorded"]
        assert report.parts_used == ["seal 22mm", "PTFE tape"]
        assert (await engine.cases.state(cid)).surveys[0].comment == COMMENT

        # The reporting tables keep the survey's scores, never its words.
        view = open_view(reporting_env(engine.settings))
        ReportProjection(engine.store, view).catch_up()
        [kept] = view.query("SELECT state FROM {case_state} WHERE case_id = ?", [cid])
        assert json.loads(kept["state"])["satisfaction"] == 91.7 and COMMENT not in kept["state"]
        assert view.query("SELECT overall FROM {surveys} WHERE case_id = ?", [cid]) == [{"overall": 91.7}]
        assert COMMENT not in json.dumps(view.query("SELECT * FROM {surveys}"))

        # The console.
        shown = await engine.cli("show", cid)
        assert shown.code == 0, shown.err
        assert f"survey.comment: {COMMENT}" in shown.out and "overall 91.7 (1-5)" in shown.out
        assert "parts used: seal 22mm, PTFE tape" in shown.out

        # Sealed with the customer's key: once it is destroyed, the comment reads as forgotten.
        engine.store.sealer.forget("c-1", "sup-sam")
        [recorded] = [e for e in engine.store.history(cid) if e.type == "SurveyRecorded"]
        assert (recorded.survey.comment, recorded.survey.overall) == (FORGOTTEN, 91.7)
        shown = await engine.cli("show", cid, "--json")
        history = json.loads(shown.out)["history"]
        assert [e["survey"]["comment"] for e in history if e["type"] == "SurveyRecorded"] == [FORGOTTEN]


async def test_a_survey_is_given_one_way(tmp_path):
    from tests.cli.helpers import casework, clean_env

    r = await casework("confirm-solution", "c", "--survey", '{"scores": {"attitude": 90}}', "--score", "attitude=90",
                       env=clean_env(CASEWORK_DATA_DIR=str(tmp_path)))
    assert r.code == 2 and "either as --survey JSON or with --score" in r.err and "Traceback" not in r.err
    r = await casework("confirm-solution", "c", "--survey-comment", "great", env=clean_env(CASEWORK_DATA_DIR=str(tmp_path)))
    assert r.code == 2 and "a survey needs its scores" in r.err
    r = await casework("confirm-solution", "c", "--survey", "{nope", env=clean_env(CASEWORK_DATA_DIR=str(tmp_path)))
    assert r.code == 2 and "--survey: not valid JSON" in r.err
    assert list(tmp_path.iterdir()) == []


async def test_a_score_that_is_not_a_finite_number_is_one_line_and_exit_2(tmp_path):
    """`float()` reads nan and inf; no scale holds them. Said before the engine is asked (none runs here):
    a --score click cannot read is its usage error (as any malformed --score), the rest one line."""
    from tests.cli.helpers import casework, clean_env

    env = clean_env(CASEWORK_DATA_DIR=str(tmp_path))
    for args, says in [
        (["--score", "attitude=nan"], "Error: Invalid value for --score: must be DIMENSION=SCORE with a finite "
                                      "number (e.g. attitude=5), got 'attitude=nan'\n"),
        (["--score", "attitude=-inf"], "Error: Invalid value for --score: must be DIMENSION=SCORE with a finite "
                                       "number (e.g. attitude=5), got 'attitude=-inf'\n"),
        (["--score", "attitude=5", "--survey-overall", "nan"],
         "casework: invalid input: --survey overall: Input should be a finite number\n"),
        (["--survey", '{"scores": {"attitude": NaN}}'],
         "casework: invalid input: --survey scores.attitude: Input should be a finite number\n"),
        (["--survey", '{"scores": {"attitude": Infinity}}'],
         "casework: invalid input: --survey scores.attitude: Input should be a finite number\n"),
    ]:
        r = await casework("confirm-solution", "c-1", "--actor", "customer:c1", *args, env=env)
        assert r.code == 2, (args, r.err)
        assert r.err.endswith(says) and r.err.count("Error") <= 1, (args, r.err)  # the message's one line, at the end
        assert "pydantic" not in r.err and "Traceback" not in r.err
    assert list(tmp_path.iterdir()) == []
