"""Errors that stop a teacher run. Per-row problems are rejects, never exceptions."""

from __future__ import annotations

from slime_data.ui import UserError


class TeacherError(UserError):
    """The run cannot go on (bad key, unknown model, server down after every retry).

    Everything answered so far is in the cache: rerunning the same command resumes.
    """


class BudgetExhausted(TeacherError):
    """``max_requests`` or ``max_cost_usd`` reached. Requests in flight finished and were cached."""
