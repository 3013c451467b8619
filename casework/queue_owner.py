"""One event store per task queue: a worker refuses to serve a queue that workers on another store poll.

Temporal hands a case's tasks to any worker polling its task queue. Two engines with SQLite stores of
their own (or PostgreSQL databases of their own) on one external server and one queue would each hold
half of every case's facts. The file lock of casework/devserver.py only covers an embedded server, so
each worker names its store in its Temporal identity, and looks at the queue's pollers before it starts.
"""

from __future__ import annotations

import hashlib
import os
import socket

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from casework.config import Settings
from casework.devserver import EngineRefused

MARK = " store="


def store_fingerprint(settings: Settings) -> str:
    """A short name of the event store this worker writes to (no secrets in it: a hash)."""
    if settings.event_store == "sqlite":
        where = f"sqlite:{socket.gethostname()}:{settings.events_db.resolve()}"
    else:
        where = (f"postgres:{settings.postgres_host}:{settings.postgres_port}/{settings.postgres_dbname}"
                 f"/{settings.postgres_schema}")
    return hashlib.sha256(where.encode()).hexdigest()[:16]


def worker_identity(fingerprint: str) -> str:
    return f"{os.getpid()}@{socket.gethostname()}{MARK}{fingerprint}"


async def ensure_queue_is_ours(client: Client, namespace: str, task_queue: str, fingerprint: str) -> None:
    """Refuse (EngineRefused) when a worker on another store, or one that does not say, polls the queue."""
    strangers = set()
    for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
        answer = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
            namespace=namespace, task_queue=TaskQueue(name=task_queue), task_queue_type=kind))
        for poller in answer.pollers:
            theirs = poller.identity.partition(MARK)[2]
            if theirs != fingerprint:
                strangers.add(poller.identity)
    if strangers:
        raise EngineRefused(
            f"task queue '{task_queue}' is polled by workers on another event store "
            f"({', '.join(sorted(strangers))}); two stores on one queue would split every case between them. "
            f"Point this worker at the same store, or use another CASEWORK_TASK_QUEUE (a worker that "
            f"stopped drops off the list within a few minutes)")
