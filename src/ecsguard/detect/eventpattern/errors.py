"""The one error an event pattern raises: AWS's InvalidEventPatternException, as a UserError."""

from __future__ import annotations

from ecsguard.core.errors import UserError

PREFIX = "Event pattern is not valid. Reason: "


class InvalidPatternError(UserError):
    """`reason` is AWS's text where AWS has one ("Empty arrays are not allowed"); `where` names
    the field (dotted path) so a long pattern's mistake can be found."""

    def __init__(self, reason: str, where: str = "") -> None:
        located = f" (at {where})" if where else ""
        super().__init__(f"{PREFIX}{reason}{located}")
        self.reason = reason
        self.where = where
