"""Case and workflow identifiers: derived, so that the same source reference is the same case."""

from __future__ import annotations

import uuid

from domain.model import SourceRef

_NAMESPACE = uuid.UUID("6f1b2c0e-3a57-4c1e-9a0b-5e8d2f4c7a10")  # casework's own uuid5 namespace


def case_id_for(source: SourceRef | None) -> str:
    """A stable id for a source reference; a fresh random id for a case with none."""
    if source is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(_NAMESPACE, f"{source.system}\x1f{source.external_id}"))


WORKFLOW_ID_PREFIX = "case-"


def workflow_id_for(case_id: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{case_id}"


def case_id_of(workflow_id: str) -> str:
    return workflow_id.removeprefix(WORKFLOW_ID_PREFIX)
