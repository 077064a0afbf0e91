"""`log_pattern`: alert on log lines of a shape never seen before, or a shape suddenly frequent.

    type: log_pattern
    log_pattern:
      cluster: prod               # optional: only this cluster
      services: [api, worker]     # optional: only these services (default: every service)
      learning: 1h                # per service, from its first line: learn templates silently
      new_templates: true         # alert when a template appears after learning
      period: 5m                  # rates are counted per period...
      trailing_periods: 12        # ...against the average of the periods before (an hour)
      rate_factor: 5              # a jump: at least this many times the trailing average
      min_count: 20               # and at least this many lines in the period
      similarity: 0.4             # Drain's threshold: share of words a line shares with a template
      max_templates: 1000         # per service; beyond it the least recently seen is forgotten

Each service (cluster, service) has its own template miner (ecsguard.detect.templates: drain3's
Drain after masking ids, numbers, IPs, hex and times). A batch is split by service, each part
filed in its miner one distinct masked line at a time; counts per template and period follow
from Arrow group-bys. A rate jump is noticed as soon as the open period's count crosses the
threshold (not only when the period ends), once per template and period. The trailing average
covers the periods since the service's first line, at most `trailing_periods`; a template new in
this period is the new-template alert's business, not a jump.

`state()` keeps each service's templates (plain JSON, see templates.Miner.state), its first-line
time and the counts of the trailing window, so a restart neither re-alerts on known templates nor
forgets their rates. Memory is bounded by `max_templates` per service and `max_services`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ecsguard.core.errors import UserError
from ecsguard.detect.rules import TYPES, Match, Rule, RuleType, rows
from ecsguard.detect.templates import Miner, MinerOptions, by_service
from ecsguard.logs.query.timerange import parse_duration

EVIDENCE = 3
STATE_VERSION = 1
TEMPLATE_CHARS = 200  # of a template in a summary


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    cluster: str | None = None
    services: tuple[str, ...] = ()
    learning: str = "1h"
    new_templates: bool = True
    period: str = "5m"
    trailing_periods: int = Field(default=12, ge=1, le=1000)
    rate_factor: float = Field(default=5.0, gt=1)
    min_count: int = Field(default=20, ge=1)
    similarity: float = Field(default=0.4, gt=0, le=1)
    depth: int = Field(default=4, ge=3, le=10)
    max_templates: int = Field(default=1000, ge=10, le=100_000)
    max_services: int = Field(default=200, ge=1, le=10_000)

    @field_validator("learning", "period")
    @classmethod
    def _duration(cls, value: str) -> str:
        try:
            seconds = parse_duration(value).total_seconds()
        except UserError as err:
            raise ValueError(f"{err.problem} ({err.hint})") from None
        if seconds < 1:
            raise ValueError(f"{value!r} is too short: at least 1s")
        return value

    def miner_options(self) -> MinerOptions:
        return MinerOptions(
            similarity=self.similarity, depth=self.depth, max_templates=self.max_templates
        )


@dataclass
class ServiceLog:
    """One service's templates, and per template the line counts of recent periods."""

    miner: Miner
    first_seen: int  # microseconds: the start of learning
    last_seen: int
    counts: dict[int, dict[int, int]] = field(default_factory=dict)  # template -> period -> n
    born: dict[int, int] = field(default_factory=dict)  # template -> its first period
    alerted: dict[int, int] = field(default_factory=dict)  # template -> period of its jump alert


class LogPattern:
    """Template mining per service; see the module docstring."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.settings: Settings = rule.settings
        self.options = self.settings.miner_options()
        self.period_us = int(parse_duration(self.settings.period).total_seconds() * 1_000_000)
        self.learning_us = int(parse_duration(self.settings.learning).total_seconds() * 1_000_000)
        self.services: dict[tuple[str, str], ServiceLog] = {}
        self.forgotten_services = 0

    # --- batches ------------------------------------------------------------------------------

    def on_batch(self, table: str, batch: pa.RecordBatch) -> list[Match]:
        if table != "logs" or batch.num_rows == 0:
            return []
        wanted = self._wanted(batch)
        if not pc.any(wanted).as_py():
            return []
        positions = pc.indices_nonzero(wanted)
        part = batch.take(positions)
        matches: list[Match] = []
        for key, rows_of_service in by_service(part):
            group = part.take(rows_of_service)
            original = positions.take(rows_of_service)  # row numbers in `batch`, for evidence
            matches += self._service_batch(key, group, batch, original)
        return matches

    def _wanted(self, batch: pa.RecordBatch) -> pa.Array:
        mask = pc.is_valid(batch.column("message"))
        if self.settings.cluster is not None:
            mask = pc.and_(mask, pc.equal(batch.column("cluster"), self.settings.cluster))
        if self.settings.services:
            services = pa.array(self.settings.services, pa.string())
            mask = pc.and_(mask, pc.is_in(batch.column("service"), value_set=services))
        return pc.fill_null(mask, False)

    def _service_batch(
        self,
        key: tuple[str, str],
        group: pa.RecordBatch,
        batch: pa.RecordBatch,
        original: pa.Array,
    ) -> list[Match]:
        times = pc.fill_null(pc.cast(group.column("time"), pa.int64()), 0)
        log = self._service(key, pc.min(times).as_py())
        log.last_seen = max(log.last_seen, pc.max(times).as_py())
        result = log.miner.add(group.column("message"))
        periods = pc.divide(times, self.period_us)
        counted = (
            pa.table({"t": result.ids, "p": periods})
            .group_by(["t", "p"])
            .aggregate([("t", "count")])
            .to_pylist()
        )
        touched: set[tuple[int, int]] = set()
        for item in counted:
            template, period, n = item["t"], item["p"], item["t_count"]
            per_period = log.counts.setdefault(template, {})
            per_period[period] = per_period.get(period, 0) + n
            log.born.setdefault(template, period)
            touched.add((template, period))
        newest = max(p for _, p in touched)
        matches = self._new_templates(key, log, result.created, result.ids, times, batch, original)
        for template, period in sorted(touched):
            if period >= newest - 1:  # late lines for old periods are counted, not judged
                jump = self._jump(key, log, template, period, result.ids, batch, original)
                if jump is not None:
                    matches.append(jump)
        self._prune(log, newest)
        return matches

    def _service(self, key: tuple[str, str], first_time: int) -> ServiceLog:
        log = self.services.get(key)
        if log is not None:
            return log
        if len(self.services) >= self.settings.max_services:
            # the least recently active service makes room (it will learn afresh if it returns)
            stale = min(self.services, key=lambda k: self.services[k].last_seen)
            del self.services[stale]
            self.forgotten_services += 1
        log = ServiceLog(Miner(self.options), first_seen=first_time, last_seen=first_time)
        self.services[key] = log
        return log

    def _new_templates(
        self,
        key: tuple[str, str],
        log: ServiceLog,
        created: list[int],
        ids: pa.Array,
        times: pa.Array,
        batch: pa.RecordBatch,
        original: pa.Array,
    ) -> list[Match]:
        learnt_at = log.first_seen + self.learning_us
        if not self.settings.new_templates or not created or pc.max(times).as_py() < learnt_at:
            return []
        matches = []
        for template in created:
            where = pc.indices_nonzero(pc.equal(ids, template))
            first_time = times[where[0].as_py()].as_py()
            if first_time < learnt_at:
                continue  # still learning what this service usually says
            text = log.miner.template(template) or ""
            matches.append(
                Match(
                    rule_id=self.rule.id,
                    time=_time(first_time),
                    summary=f"{_name(key)}: a new kind of log line: {_short(text)}",
                    evidence=self._evidence(batch, original, where, template, text, "new"),
                    key=self._key(key, "new", template),
                    count=len(where),
                )
            )
        return matches

    def _jump(
        self,
        key: tuple[str, str],
        log: ServiceLog,
        template: int,
        period: int,
        ids: pa.Array,
        batch: pa.RecordBatch,
        original: pa.Array,
    ) -> Match | None:
        s = self.settings
        count = log.counts[template][period]
        if count < s.min_count or log.alerted.get(template) == period:
            return None
        if log.born.get(template, period) >= period:
            return None  # new in this period: the new-template alert covers it
        if period * self.period_us < log.first_seen + self.learning_us:
            return None  # still learning the service's usual rates
        since_start = period - log.first_seen // self.period_us
        window = min(s.trailing_periods, since_start)
        if window <= 0:
            return None
        history = log.counts[template]
        average = sum(history.get(p, 0) for p in range(period - window, period)) / window
        if count < s.rate_factor * average:
            return None
        log.alerted[template] = period
        text = log.miner.template(template) or ""
        where = pc.indices_nonzero(pc.equal(ids, template))
        span = _span(self.period_us * window)
        return Match(
            rule_id=self.rule.id,
            time=_time((period + 1) * self.period_us),
            summary=(
                f"{_name(key)}: {count} lines in {s.period} like {_short(text)}: "
                f"{count / average if average else float('inf'):.1f}x the average of "
                f"{average:.1f} over the previous {span}"
            ),
            evidence=self._evidence(batch, original, where, template, text, "rate"),
            key=self._key(key, "rate", template),
            count=count,
        )

    def _evidence(
        self,
        batch: pa.RecordBatch,
        original: pa.Array,
        where: pa.Array,
        template: int,
        text: str,
        kind: str,
    ) -> list[dict[str, Any]]:
        picked = original.take(where.slice(0, EVIDENCE)).to_pylist()
        found = rows(batch, picked)
        for record in found:
            record["template"] = text
            record["template_id"] = template
            record["pattern_alert"] = kind
        return found

    def _key(self, key: tuple[str, str], kind: str, template: int) -> tuple[Any, ...]:
        facts = {"cluster": key[0], "service": key[1], "kind": kind, "template": template}
        if not self.rule.group_by:
            return (key[0], key[1], kind, template)  # one alert per template and kind
        return tuple(facts.get(name) for name in self.rule.group_by)

    def _prune(self, log: ServiceLog, newest: int) -> None:
        """Counts older than the trailing window are no longer needed."""
        oldest = newest - self.settings.trailing_periods - 1
        live = {cluster_id for cluster_id in log.counts if log.miner.template(cluster_id)}
        for template in list(log.counts):
            if template not in live:  # forgotten by the miner (max_templates)
                del log.counts[template]
                log.born.pop(template, None)
                log.alerted.pop(template, None)
                continue
            per_period = log.counts[template]
            for period in [p for p in per_period if p < oldest]:
                del per_period[period]
        for template, period in list(log.alerted.items()):
            if period < oldest:
                del log.alerted[template]

    # --- ticks --------------------------------------------------------------------------------

    def on_tick(self, now: datetime) -> list[Match]:
        return []  # jumps are judged as lines arrive; nothing waits for a clock

    # --- persistence --------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "options": self._identity(),
            "services": [
                {
                    "cluster": cluster,
                    "service": service,
                    "first_seen": log.first_seen,
                    "last_seen": log.last_seen,
                    "miner": log.miner.state(),
                    "counts": {
                        str(t): {str(p): n for p, n in per.items()} for t, per in log.counts.items()
                    },
                    "born": {str(t): p for t, p in log.born.items()},
                    "alerted": {str(t): p for t, p in log.alerted.items()},
                }
                for (cluster, service), log in self.services.items()
            ],
        }

    def restore(self, state: dict[str, Any]) -> None:
        if not state or state.get("version") != STATE_VERSION:
            return
        if state.get("options") != self._identity():
            return  # other mining options make other templates: learn afresh
        self.services = {}
        for item in state.get("services", [])[: self.settings.max_services]:
            miner = Miner.from_state(item.get("miner", {}), self.options)
            self.services[(str(item["cluster"]), str(item["service"]))] = ServiceLog(
                miner=miner,
                first_seen=int(item["first_seen"]),
                last_seen=int(item["last_seen"]),
                counts={
                    int(t): {int(p): int(n) for p, n in per.items()}
                    for t, per in item.get("counts", {}).items()
                },
                born={int(t): int(p) for t, p in item.get("born", {}).items()},
                alerted={int(t): int(p) for t, p in item.get("alerted", {}).items()},
            )

    def _identity(self) -> dict[str, Any]:
        return {"similarity": self.settings.similarity, "depth": self.settings.depth}

    # --- what a person asks -------------------------------------------------------------------

    def templates(self, cluster: str, service: str) -> list[tuple[int, str, int]]:
        """A service's templates (id, text, lines), the most frequent first."""
        log = self.services.get((cluster, service))
        if log is None:
            return []
        return [(t.id, t.text, t.count) for t in log.miner.templates()]


def _name(key: tuple[str, str]) -> str:
    cluster, service = key
    return f"{service or '(no service)'}" + (f" ({cluster})" if cluster else "")


def _short(text: str) -> str:
    return repr(text if len(text) <= TEMPLATE_CHARS else text[: TEMPLATE_CHARS - 1] + "…")


def _time(microseconds: int) -> datetime:
    return datetime.fromtimestamp(microseconds / 1_000_000, UTC)


def _span(microseconds: int) -> str:
    seconds = microseconds // 1_000_000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


TYPES.add(
    "log_pattern",
    RuleType(
        name="log_pattern",
        settings=Settings,
        tables=("logs",),
        compile=LogPattern,
        summary="log templates per service (drain3): a new kind of line, or one suddenly frequent",
    ),
)
