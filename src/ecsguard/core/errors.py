"""Errors a user can act on.

`UserError` carries one line naming the problem and one saying what to do. The CLI prints both and
exits non-zero without a traceback; anything else that escapes is a programming error and keeps its
traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the input or the outside world that the user can fix."""

    exit_code = 2

    def __init__(self, problem: str, hint: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.problem} ({self.hint})" if self.hint else self.problem


class AwsAccessError(UserError):
    """AWS could not be reached or refused the credentials: nothing can be collected."""

    exit_code = 3


class SnapshotError(UserError):
    """A snapshot file is missing, corrupt or of a version this ecsguard cannot read."""
