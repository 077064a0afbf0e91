"""Reading user files with errors that name the file, the line and the field."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

from ecsguard.core.errors import UserError


def parse_yaml(text: str, name: str, what: str, hint: str = "fix the syntax") -> Any:
    """YAML text -> data; a syntax error becomes `WHAT NAME:LINE: invalid YAML: PROBLEM`."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UserError(f"{what} {where}: invalid YAML: {problem}".lstrip(), hint) from None


def is_gzip(data: bytes) -> bool:
    """Whether `data` begins as a gzip stream does (its two magic bytes)."""
    return data[:2] == b"\x1f\x8b"


def first_error(err: ValidationError) -> str:
    """`field.path: message` of a validation error's first problem."""
    first = err.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
