"""Compare an audit with an earlier one: which failures are new, unchanged, or resolved."""

from __future__ import annotations

from pathlib import Path

import orjson
from pydantic import TypeAdapter, ValidationError

from ecsguard.core.errors import UserError
from ecsguard.core.files import first_error
from ecsguard.core.models import Finding, Status

_FINDINGS = TypeAdapter(list[Finding])


def load_baseline(path: str | Path) -> list[Finding]:
    """Read findings written by `ecsguard audit --output json`."""
    source = Path(path)
    hint = "pass a file written by `ecsguard audit --output json -o FILE`"
    try:
        raw = orjson.loads(source.read_bytes())
    except OSError as err:
        raise UserError(
            f"cannot read baseline {source}: {err.strerror}", "check the path"
        ) from None
    except orjson.JSONDecodeError as err:
        raise UserError(f"baseline {source} is not valid JSON ({err})", hint) from None
    if isinstance(raw, list) and all(isinstance(item, dict) for item in raw):
        raw = [{k: v for k, v in item.items() if k != "baseline"} for item in raw]
    try:
        return _FINDINGS.validate_python(raw)
    except ValidationError as err:
        raise UserError(
            f"baseline {source} is not a findings list: {first_error(err)}", hint
        ) from None


def compare(
    current: list[Finding], baseline: list[Finding]
) -> tuple[dict[tuple[str, str], str], list[Finding]]:
    """(check_id, resource) -> new|unchanged for current failures, and the resolved ones."""
    failed_before = {(f.check_id, f.resource_arn): f for f in baseline if f.status == Status.FAIL}
    failing_now = {(f.check_id, f.resource_arn) for f in current if f.status == Status.FAIL}
    marks = {key: "unchanged" if key in failed_before else "new" for key in failing_now}
    resolved = [f for key, f in sorted(failed_before.items()) if key not in failing_now]
    return marks, resolved
