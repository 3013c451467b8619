"""The published contract files match the code: JSON Schemas up to date, compose file well formed."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from casework.schemas import OUT, render, schemas

ROOT = Path(__file__).resolve().parents[2]


def test_published_json_schemas_are_generated_from_the_current_models():
    expected = {name: render(schema) for name, schema in schemas().items()}
    on_disk = {p.name: p.read_text() for p in OUT.glob("*.json")}
    assert on_disk == expected, "run: python -m casework.schemas"


def test_every_update_in_the_contract_is_documented():
    doc = (ROOT / "docs" / "contract.md").read_text()
    for name in schemas():
        if name.startswith("update-") and not name.startswith("update-open"):
            kind = name.split(".")[0].removeprefix("update-")
            assert f"`{kind}`" in doc, kind


def test_compose_describes_temporal_on_postgres_with_ui_and_the_worker():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgresql", "temporal", "temporal-ui", "casework-worker"} <= set(services)
    temporal_env = services["temporal"]["environment"]
    assert temporal_env["DB"] == "postgres12" and temporal_env["POSTGRES_SEEDS"] == "postgresql"
    worker = services["casework-worker"]
    assert worker["environment"]["CASEWORK_TEMPORAL_ADDRESS"] == "temporal:7233"
    assert worker["environment"]["CASEWORK_EVENT_STORE"] == "postgres"
    assert "temporal" in worker["depends_on"] and "postgresql" in worker["depends_on"]
    assert services["temporal-ui"]["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    for name, service in services.items():
        assert "image" in service or "build" in service, name
    # Scale-out shape: workers on one queue without the single-runner jobs, which run once apiece.
    assert worker["deploy"]["replicas"] >= 2
    assert worker["environment"]["CASEWORK_PROJECTIONS"] == "false"
    assert worker["environment"]["CASEWORK_NOTIFICATIONS"] == "false"
    assert services["casework-projector"]["command"] == ["casework", "projections", "run"]
    assert services["casework-notifier"]["command"] == ["casework", "notifications", "run"]
    assert "deploy" not in services["casework-projector"] and "deploy" not in services["casework-notifier"]


def test_every_reporting_table_and_column_is_documented():
    from projections.schema import TABLES

    doc = (ROOT / "docs" / "reporting.md").read_text()
    for table, columns in TABLES.items():
        section = doc.split(f"## {table}")[1].split("\n## ")[0]
        names = re.findall(r"(\w+) (?:TEXT|REAL|INTEGER)", columns)
        assert names
        for column in names:
            assert re.search(rf"\b{column}\b", section), f"{table}.{column}"
