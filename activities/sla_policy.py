"""Reading the SLA policy file when a case opens: its terms are then pinned on the case for good."""

from __future__ import annotations

import threading
from pathlib import Path

from pydantic import BaseModel
from temporalio import activity

from casework.policy import DEFAULT_POLICY, load_policy
from domain.model import Category, Channel, Priority, Tier
from domain.sla import SlaTerms


class TermsFor(BaseModel):
    priority: Priority
    tier: Tier
    category: Category
    channel: Channel


class SlaPolicyActivities:
    def __init__(self, policy_path: str | None = None) -> None:
        self.policy_path = policy_path
        self._loaded: tuple[tuple, object] | None = None  # (the files' signature, the policy read from them)
        self._lock = threading.Lock()
        # Read now, so a worker given a policy that does not load is refused at its start, named
        # (PolicyError). Read first at an opening, the failing activity was retried for as long as the
        # file stayed broken, and the opening (and every command that waited on it) never answered.
        self._policy()

    # Read for every opening, so an edited policy applies to new cases and never to running ones; kept
    # while its files are unchanged (parsing it, calendars included, took 63 ms of CPU per opening).
    @activity.defn(name="load_sla_terms")
    def load_sla_terms(self, inp: TermsFor) -> SlaTerms:
        return self._policy().terms_for(inp.priority, inp.tier, inp.category, inp.channel)

    def _policy(self):
        signature = _signature(Path(self.policy_path or DEFAULT_POLICY))
        with self._lock:
            if self._loaded is None or self._loaded[0] != signature:
                self._loaded = (signature, load_policy(self.policy_path))
            return self._loaded[1]


def _signature(path: Path) -> tuple:
    """What changes when the policy file, or a calendar file beside it (its .ics), is edited. A
    calendar file kept elsewhere is read again when the policy file changes, or at the worker's start."""
    def stat(p: Path) -> tuple:
        try:
            st = p.stat()
            return (str(p), st.st_mtime_ns, st.st_size)
        except OSError:
            return (str(p), None, None)
    beside = sorted(path.parent.glob("*.ics")) if path.parent.is_dir() else []
    return (stat(path), *(stat(p) for p in beside))
