"""Errors a user can act on.

`UserError` carries one line naming the problem and one saying what to do. The CLI prints both and
exits non-zero without a traceback; anything else that escapes is a programming error and keeps its
traceback.
"""

from __future__ import annotations

from typing import Any


class UserError(Exception):
    """A problem with the input or the outside world that the user can fix."""

    exit_code = 2

    def __init__(self, problem: str, hint: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.problem} ({self.hint})" if self.hint else self.problem


def server_refused(reply: Any, server: str, what: str) -> UserError:
    """The error for an `ecsguard serve` answer other than 2xx (`reply`: an httpx response) to a
    request for `what` ("the tail", "the reload"), with the server's own message."""
    try:
        message = str(reply.json().get("error"))
    except (ValueError, AttributeError):
        message = reply.text[:200]
    if reply.status_code == 401:
        return UserError(
            f"{server} refused the token: {message}", "pass --token or set ECSGUARD_TOKEN"
        )
    return UserError(f"{server} refused {what} ({reply.status_code}): {message}")


class AwsAccessError(UserError):
    """AWS could not be reached or refused the credentials: nothing can be collected."""

    exit_code = 3


class SnapshotError(UserError):
    """A snapshot file is missing, corrupt or of a version this ecsguard cannot read."""
