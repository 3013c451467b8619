"""Building commands the way a backend would, with fresh command ids."""

from __future__ import annotations

import uuid
from typing import Any

from domain.commands import COMMAND_ADAPTER, Command, OpenCase
from domain.model import Actor, Role

AGENT = Actor(id="agent-alice", role=Role.agent)
CUSTOMER = Actor(id="cust-1", role=Role.customer)
SUPERVISOR = Actor(id="sup-sam", role=Role.supervisor)


def open_case(**fields: Any) -> OpenCase:
    payload: dict[str, Any] = {
        "command_id": str(uuid.uuid4()), "actor": AGENT,
        "source": {"system": "test", "external_id": str(uuid.uuid4())},
        "customer": {"id": "cust-1", "name": "Wang Fang", "contact": "wang@example.com", "tier": "B"},
        "channel": "email", "category": "fault", "priority": "normal",
        "subject": "Printer offline", "description": "The office printer does not answer.",
    }
    payload.update(fields)
    return OpenCase.model_validate(payload)


def command(kind: str, actor: Actor = AGENT, **fields: Any) -> Command:
    fields.setdefault("command_id", str(uuid.uuid4()))
    return COMMAND_ADAPTER.validate_python({"kind": kind, "actor": actor, **fields})
