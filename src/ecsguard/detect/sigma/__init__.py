"""Sigma rules (SigmaHQ's CloudTrail rules, or your own) evaluated over the `cloudtrail` table.

pySigma parses each rule and its condition; this package compiles the parsed tree into a test of
one CloudTrail record (compiler.py, values.py), maps Sigma field names to the table's columns and
JSON paths (fields.py), and runs rules over Arrow batches behind a vectorised prefilter on
eventSource/eventName (evaluate.py). loader.py reads files and folders, reporting each rule it
cannot honour with file, line and reason; coverage.py checks the rules against the Stratus Red
Team detonation logs and writes docs/sigma-coverage.md.

Sigma semantics kept: case-insensitive matching unless `cased`; wildcards `*` and `?`; lists OR-ed
(`all`: AND-ed), maps AND-ed; `null` matches an absent or null field; keywords search every text
the table keeps; the condition language through pySigma's parse tree; modifiers contains,
startswith, endswith, all, re (with i, m, s), cidr, exists, base64, base64offset, windash, wide /
utf16*, cased, gt, gte, lt, lte, neq, fieldref and the time parts (minute ... year).
Limits: the table keeps a subset of each record, so a rule reading a field it drops
(`vpcEndpointId`, `serviceEventDetails`, ...) is
reported; a null column cannot be told from an absent field (`exists` sees both as absent).
"""

from __future__ import annotations

from ecsguard.detect.sigma.loader import (
    SEVERITY,
    SigmaProblem,
    SigmaSpec,
    compile_document,
    load_sigma,
)

__all__ = ["SEVERITY", "SigmaProblem", "SigmaSpec", "compile_document", "load_sigma"]
