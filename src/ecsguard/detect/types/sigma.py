"""Rule type `sigma`: one Sigma rule over the cloudtrail table (see ecsguard.detect.sigma).

    id: ct-stopped
    title: CloudTrail logging stopped
    type: sigma
    sigma:
      rule:                         # the Sigma rule inline, as SigmaHQ writes it ...
        title: CloudTrail stopped
        logsource: {product: aws, service: cloudtrail}
        detection:
          selection: {eventSource: cloudtrail.amazonaws.com, eventName: [StopLogging, DeleteTrail]}
          condition: selection
    # ... or `sigma: {path: sigma/aws_cloudtrail_disable_logging.yml}` (one rule per file;
    # a relative path is read from the directory given as `base_dir` in the validation context,
    # else from the working directory)

Each matching record is one Match: the Sigma title and the event in the summary, the record as
evidence. `import_sigma_dir(DIR)` turns a SigmaHQ folder into such rules (id `sigma-<Sigma id or
file stem>`, the Sigma title, tags and level), with the documents it cannot support listed.
Sigma `level` → severity: informational → info, low → low, medium → medium, high → high,
critical → critical; no level → medium.
"""

from __future__ import annotations

import re
import weakref
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationInfo, model_validator

from ecsguard.core.errors import UserError
from ecsguard.detect.rules import TYPES, Evaluator, Match, Rule, RuleType, Stateless, rows
from ecsguard.detect.sigma import SigmaSpec, compile_document, load_sigma
from ecsguard.detect.sigma.evaluate import SCREEN
from ecsguard.detect.sigma.fields import FieldRef, Record, UnknownField, resolve
from ecsguard.detect.sigma.loader import load_file

NAME = "sigma"


class SigmaSettings(BaseModel):
    """Exactly one of `rule` (a Sigma rule as a mapping) or `path` (a file holding one)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    rule: dict[str, Any] | None = None
    path: str | None = None
    _spec: SigmaSpec | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _compile(self, info: ValidationInfo) -> Self:
        if (self.rule is None) == (self.path is None):
            raise ValueError("give either `rule` (a Sigma rule inline) or `path` (a Sigma file)")
        if self.rule is not None:
            result = compile_document(self.rule)
            if not isinstance(result, SigmaSpec):
                raise ValueError(f"Sigma rule: {result.reason}")
            self._spec = result
            return self
        assert self.path is not None
        file = Path(self.path)
        base = (info.context or {}).get("base_dir") if info is not None else None
        if not file.is_absolute() and base is not None:
            file = Path(base) / file
        if not file.is_file():
            raise ValueError(f"no Sigma rule file at {file}")
        specs, problems = load_file(file)
        if problems:
            raise ValueError(f"Sigma rule: {problems[0]}")
        if len(specs) != 1:
            raise ValueError(
                f"{file} holds {len(specs)} Sigma rules; a `sigma` rule takes one "
                "(`ecsguard rules import-sigma DIR` loads a folder)"
            )
        self._spec = specs[0]
        return self

    @property
    def spec(self) -> SigmaSpec:
        assert self._spec is not None, "validated settings always hold a compiled rule"
        return self._spec

    @classmethod
    def from_spec(cls, spec: SigmaSpec) -> SigmaSettings:
        """Settings for an already loaded rule (no second compilation)."""
        settings = cls.model_construct(rule=spec.mapping, path=None)
        settings._spec = spec
        return settings

    def __reduce__(self) -> tuple[Any, ...]:
        # the compiled rule holds closures, which do not pickle, and the detection process gets
        # its rules pickled: the other side compiles the rule's mapping again
        return (_recompiled, (self.spec.mapping, self.rule, self.path))


def _recompiled(mapping: dict[str, Any], rule: dict[str, Any] | None, path: str | None) -> Any:
    spec = compile_document(mapping)
    if not isinstance(spec, SigmaSpec):  # it compiled in the process that pickled it
        raise ValueError(f"Sigma rule: {spec.reason}")
    settings = SigmaSettings.model_construct(rule=rule, path=path)
    settings._spec = spec
    return settings


def _group_ref(name: str) -> FieldRef:
    try:
        return resolve(name)
    except UnknownField:
        raise UserError(
            f"group_by field {name!r} is not kept in the cloudtrail table",
            "use a CloudTrail field such as userIdentity.arn, sourceIPAddress or eventName",
        ) from None


def _key_value(values: list[Any]) -> Any:
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(str(v) for v in values)


def _summary(title: str, row: dict[str, Any]) -> str:
    who = row.get("identity_arn") or row.get("identity_type") or "an unknown identity"
    text = f"{title}: {row.get('event_name')} by {who} from {row.get('source_ip') or '?'}"
    if row.get("error_code"):
        text += f" ({row['error_code']})"
    return text


class SigmaEvaluator(Stateless):
    def __init__(self, rule: Rule, spec: SigmaSpec) -> None:
        self.rule = rule
        self.spec = spec
        self.group = [_group_ref(name) for name in rule.group_by]
        screen = spec.matcher.screen
        if screen is not None:  # rules.BatchGroup: not called for a batch nothing of it passes
            self.batch_group = SCREEN
            self.batch_key = SCREEN.register(screen)
            weakref.finalize(self, SCREEN.release, self.batch_key)

    def on_batch(self, table: str, batch: Any) -> list[Match]:
        if table != "cloudtrail":
            return []
        found = self.spec.matcher.rows(batch)
        matches = []
        for row in rows(batch, found):
            record = Record(row)
            when = row.get("time")
            matches.append(
                Match(
                    rule_id=self.rule.id,
                    time=when if isinstance(when, datetime) else datetime.now(UTC),
                    summary=_summary(self.spec.title, row),
                    evidence=[row],
                    key=tuple(_key_value(record.values(ref)) for ref in self.group),
                )
            )
        return matches


def compile_rule(rule: Rule) -> Evaluator:
    settings = rule.settings
    if not isinstance(settings, SigmaSettings):
        raise UserError(f"rule {rule.id}: sigma settings missing", "give `sigma: {rule: ...}`")
    return SigmaEvaluator(rule, settings.spec)


TYPES.add(
    NAME,
    RuleType(
        name=NAME,
        settings=SigmaSettings,
        tables=("cloudtrail",),
        compile=compile_rule,
        summary="a Sigma rule (SigmaHQ's CloudTrail rules) over CloudTrail records",
    ),
)


def _rule_id(spec: SigmaSpec) -> str:
    raw = spec.sigma_id or spec.name
    return "sigma-" + re.sub(r"[^A-Za-z0-9._:-]", "-", raw)[:120]


def to_rule(spec: SigmaSpec) -> Rule:
    return Rule(
        id=_rule_id(spec),
        title=spec.title,
        type=NAME,
        severity=spec.severity,
        description=spec.description,
        tags=spec.tags,
        settings=SigmaSettings.from_spec(spec),
        source=f"{spec.path}:{spec.line}",
    )


def import_sigma_dir(path: str | Path) -> tuple[list[Rule], list[str]]:
    """Rules of type `sigma` for each Sigma rule under `path` (a folder as SigmaHQ ships it, or
    one file), and one line per document that could not be loaded (`file:line: title: why`)."""
    specs, problems = load_sigma(path)
    return [to_rule(spec) for spec in specs], [str(p) for p in problems]
