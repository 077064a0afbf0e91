"""The time window of a query: `--since 1h`, or `--start T --end T` (ISO 8601 or epoch seconds)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ecsguard.core.errors import UserError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
DEFAULT_SINCE = "1h"


@dataclass(frozen=True)
class TimeRange:
    start: datetime  # inclusive, UTC
    end: datetime  # exclusive, UTC

    def sql(self, column: str = "time") -> str:
        """A predicate on `column` DuckDB can push into Parquet row-group statistics."""
        return (
            f"{column} >= TIMESTAMPTZ '{self.start.isoformat()}' "
            f"AND {column} < TIMESTAMPTZ '{self.end.isoformat()}'"
        )


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `1h`, `2d`, `1w` as a timedelta."""
    match = _DURATION.match(text)
    if not match:
        raise UserError(
            f"cannot read the duration {text!r}",
            "write a number and a unit: 30s, 15m, 1h, 2d or 1w",
        )
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


def parse_instant(text: str, name: str) -> datetime:
    """An ISO 8601 time (UTC when no zone is given) or epoch seconds."""
    value = text.strip()
    try:
        if re.fullmatch(r"\d+(\.\d+)?", value):
            return datetime.fromtimestamp(float(value), UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise UserError(
            f"cannot read {name} {text!r}",
            "write an ISO 8601 time such as 2026-11-28T09:00:00Z, or epoch seconds",
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def resolve(
    since: str | None, start: str | None, end: str | None, now: datetime | None = None
) -> TimeRange:
    """The window the options describe; with none of them, the last hour."""
    now = now or datetime.now(UTC)
    if since and (start or end):
        raise UserError("--since cannot be combined with --start/--end", "give one or the other")
    if start or end:
        begin = parse_instant(start, "--start") if start else datetime(1970, 1, 1, tzinfo=UTC)
        finish = parse_instant(end, "--end") if end else now + timedelta(seconds=1)
        if begin >= finish:
            raise UserError(
                f"--start {start} is not before --end {end}", "swap them or widen the window"
            )
        return TimeRange(begin, finish)
    # the end lies a moment in the future, so a record ingested this second is inside
    return TimeRange(now - parse_duration(since or DEFAULT_SINCE), now + timedelta(seconds=1))
