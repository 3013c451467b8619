"""What the follow-up needs from outside the case: when the customer was last surveyed (throttling)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from temporalio import activity


class LastSurvey(BaseModel):
    customer_id: str


class FollowUpActivities:
    def __init__(self, reporting_env: dict[str, str] | None = None) -> None:
        self.reporting_env = reporting_env
        self._view = None

    @activity.defn(name="last_survey_at")
    def last_survey_at(self, inp: LastSurvey) -> datetime | None:
        """From the reporting tables (so across all the customer's cases); None when never surveyed."""
        if not self.reporting_env:
            return None
        if self._view is None:
            from projections.runner import open_view

            self._view = open_view(self.reporting_env)
        rows = self._view.query("SELECT MAX(at) AS last FROM {surveys} WHERE customer_id = ?", [inp.customer_id])
        last = rows[0]["last"] if rows else None
        return datetime.fromisoformat(last.replace("Z", "+00:00")) if last else None
