"""CloudWatch GetMetricData polling into the `metrics` table, incremental and without doubles.

A poll builds the queries from a Snapshot (`queries`), sends them per region in batches of up
to 500 MetricDataQueries per GetMetricData call (following NextToken) and stores every datapoint
as a row (time, namespace, name, dimensions JSON, value, unit) through the pipeline's WAL.

Incremental: a small JSON state file (DATA_DIR/monitor/cloudwatch.json) keeps, per series, the end
of the last poll and the newest datapoint stored. The next poll starts one period before that end,
so a datapoint CloudWatch publishes late (after its period closed) is still fetched. The window
ends at the start of the current period: a period still filling in would be stored half-counted.

No doubles: a datapoint at or before the newest one stored for its series is skipped, which
drops what the overlap fetches again; a datapoint revised after it was stored keeps its first
value. The state is written (atomically) after the rows are durable in the WAL: a crash between
the two re-fetches one window, it never loses one. Each row's id is its series (the query) and
timestamp (records.metric_ids without the value), so what such a re-fetch stores again is one
row per id after compaction.

Failures of AWS are data: an AccessDenied or an exhausted throttle on a batch becomes a message
naming the call, the region and the code; that batch's series keep their old state (the next poll
retries them) and the other batches go on.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.exceptions as bce
import orjson
import pyarrow as pa

from ecsguard.aws.collect import METRICS_POLL_ACTIONS
from ecsguard.aws.session import AwsSession
from ecsguard.aws.snapshot import Snapshot
from ecsguard.core.errors import AwsAccessError, UserError
from ecsguard.logs.pipeline import Pipeline
from ecsguard.logs.records import epoch_us, metric_ids
from ecsguard.logs.schema import METRICS
from ecsguard.logs.store import StoreLocation
from ecsguard.monitor.queries import (
    MetricQuery,
    service_queries,
    target_group_arns,
    target_group_queries,
)

#: GetMetricData's limit of MetricDataQueries per call
MAX_QUERIES_PER_CALL = 500
#: DescribeTargetGroups accepts at most this many ARNs per call
MAX_TARGET_GROUPS_PER_CALL = 20
#: the IAM actions a poll calls (for the auditor policy)
ACTIONS = METRICS_POLL_ACTIONS  # declared in aws/collect.py, so the auditor policy has them
STATE_VERSION = 1
SOURCE = "cloudwatch"  # the `source` part of the rows' ids (records.metric_ids)


@dataclass
class PollResult:
    """What one poll did: counts for the CLI, and the failures as one-line messages."""

    queries: int = 0
    calls: int = 0
    datapoints: int = 0  # returned by CloudWatch
    stored: int = 0  # new rows (the rest were already stored)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "queries": self.queries,
            "calls": self.calls,
            "datapoints": self.datapoints,
            "stored": self.stored,
            "problems": self.problems,
        }


@dataclass
class SeriesState:
    end: datetime  # the end of the last window polled
    last: datetime | None  # the newest datapoint stored


class PollState:
    """The state file: series key -> SeriesState; written to a temporary name and renamed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.series: dict[str, SeriesState] = {}
        if path.exists():
            self._read()

    def _read(self) -> None:
        try:
            data = orjson.loads(self.path.read_bytes())
            for key, item in data["series"].items():
                last = item.get("last")
                self.series[key] = SeriesState(
                    datetime.fromisoformat(item["end"]),
                    datetime.fromisoformat(last) if last else None,
                )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise UserError(
                f"cannot read the poll state {self.path}: {err}",
                "delete the file to start again from --since",
            ) from None

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {
            "version": STATE_VERSION,
            "series": {
                key: {"end": s.end.isoformat(), "last": s.last.isoformat() if s.last else None}
                for key, s in sorted(self.series.items())
            },
        }
        temporary = self.path.with_suffix(".tmp")
        with open(temporary, "wb") as out:
            out.write(orjson.dumps(body, option=orjson.OPT_INDENT_2))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.path)


def state_path(data_dir: Path) -> Path:
    return Path(data_dir) / "monitor" / "cloudwatch.json"


def floor_time(moment: datetime, period: int) -> datetime:
    seconds = int(moment.timestamp())
    return datetime.fromtimestamp(seconds - seconds % period, UTC)


class CloudWatchPoller:
    """Polls the metrics of a Snapshot's services into one data directory."""

    def __init__(
        self,
        session: AwsSession,
        data_dir: Path,
        *,
        period: int = 60,
        since: timedelta = timedelta(hours=3),
        store: StoreLocation | None = None,
    ) -> None:
        self.session = session
        self.data_dir = Path(data_dir)
        self.store = store
        self.period = period
        self.since = since
        self.state = PollState(state_path(self.data_dir))

    # -- the whole poll ----------------------------------------------------------------------------
    def poll(
        self, snapshot: Snapshot, regions: Sequence[str] = (), now: datetime | None = None
    ) -> PollResult:
        result = PollResult()
        for region in sorted(snapshot.regions):
            if regions and region not in regions:
                continue
            queries = service_queries(snapshot, region)
            queries += target_group_queries(self.load_balancers(snapshot, region, result))
            self.poll_queries(region, queries, result, now)
        return result

    def load_balancers(
        self, snapshot: Snapshot, region: str, result: PollResult
    ) -> dict[str, list[str]]:
        """Target group ARN -> its load balancer ARNs (DescribeTargetGroups, 20 ARNs a call)."""
        arns = target_group_arns(snapshot, region)
        found: dict[str, list[str]] = {}
        client = self.session.client("elbv2", region)
        for start in range(0, len(arns), MAX_TARGET_GROUPS_PER_CALL):
            batch = arns[start : start + MAX_TARGET_GROUPS_PER_CALL]
            for group in self._describe_target_groups(client, region, batch, result):
                found[group["TargetGroupArn"]] = list(group.get("LoadBalancerArns") or [])
        return found

    def _describe_target_groups(
        self, client: Any, region: str, arns: list[str], result: PollResult
    ) -> list[dict[str, Any]]:
        try:
            groups: list[dict[str, Any]] = client.describe_target_groups(TargetGroupArns=arns)[
                "TargetGroups"
            ]
            return groups
        except bce.ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code == "TargetGroupNotFound" and len(arns) > 1:
                # one deleted group fails the whole call: ask for each, to skip only that one
                return [
                    g
                    for arn in arns
                    for g in self._describe_target_groups(client, region, [arn], result)
                ]
            what = arns[0] if len(arns) == 1 else f"{len(arns)} target groups"
            result.problems.append(
                _problem("elasticloadbalancing:DescribeTargetGroups", region, err)
                + f"; skipped the metrics of {what}"
            )
            return []
        except bce.BotoCoreError as err:
            raise _unreachable(err, self.session) from None

    # -- one region's queries ---------------------------------------------------------------------
    def poll_queries(
        self,
        region: str,
        queries: Sequence[MetricQuery],
        result: PollResult,
        now: datetime | None = None,
    ) -> None:
        """Fetch `queries` from their incremental start to the current period and store the new
        datapoints; one GetMetricData call per 500 queries that share a start time."""
        queries = list(dict.fromkeys(queries))
        result.queries += len(queries)
        end = floor_time(now or datetime.now(UTC), self.period)
        by_start: dict[datetime, list[MetricQuery]] = defaultdict(list)
        for query in queries:
            by_start[self.start_of(query, end)].append(query)
        client = self.session.client("cloudwatch", region)
        pipeline = Pipeline(self.data_dir, store=self.store)
        try:
            for start, group in sorted(by_start.items()):
                if start >= end:
                    continue
                for first in range(0, len(group), MAX_QUERIES_PER_CALL):
                    batch = group[first : first + MAX_QUERIES_PER_CALL]
                    self._poll_batch(client, region, batch, start, end, pipeline, result)
            pipeline.flush()
        finally:
            pipeline.close()

    def start_of(self, query: MetricQuery, end: datetime) -> datetime:
        """One period before the last poll's end (late datapoints), else `end - since`."""
        known = self.state.series.get(query.key)
        if known is None:
            return floor_time(end - self.since, self.period)
        return floor_time(min(known.end, end) - timedelta(seconds=self.period), self.period)

    def _poll_batch(
        self,
        client: Any,
        region: str,
        batch: Sequence[MetricQuery],
        start: datetime,
        end: datetime,
        pipeline: Pipeline,
        result: PollResult,
    ) -> None:
        try:
            points, calls = self._fetch(client, batch, start, end)
        except bce.ClientError as err:
            result.calls += 1
            result.problems.append(
                _problem("cloudwatch:GetMetricData", region, err)
                + f"; {len(batch)} series not polled (retried next time)"
            )
            return
        except bce.BotoCoreError as err:
            raise _unreachable(err, self.session) from None
        result.calls += calls
        rows: dict[str, list[Any]] = {name: [] for name in METRICS.names if name != "id"}
        keys: list[str] = []  # the series of each row, for its id
        newest: dict[str, datetime] = {}
        for query, timestamps, values in points:
            state = self.state.series.get(query.key)
            after = state.last if state else None
            for moment, value in zip(timestamps, values, strict=True):
                result.datapoints += 1
                if after is not None and moment <= after:
                    continue  # fetched again by the overlap: stored last time
                rows["time"].append(moment)
                rows["namespace"].append(query.namespace)
                rows["name"].append(query.name)
                rows["dimensions"].append(query.dimensions_json)
                rows["value"].append(float(value))
                rows["unit"].append(query.unit)
                keys.append(query.key)
                if query.key not in newest or moment > newest[query.key]:
                    newest[query.key] = moment
        if rows["time"]:
            rows["id"] = _ids(rows, keys)
            pipeline.ingest("metrics", pa.RecordBatch.from_pydict(rows, schema=METRICS))
            result.stored += len(rows["time"])
        for query in batch:  # after the rows are durable: a crash re-fetches, never loses
            old = self.state.series.get(query.key)
            last = newest.get(query.key) or (old.last if old else None)
            self.state.series[query.key] = SeriesState(end, last)
        self.state.save()

    def _fetch(
        self, client: Any, batch: Sequence[MetricQuery], start: datetime, end: datetime
    ) -> tuple[list[tuple[MetricQuery, list[datetime], list[float]]], int]:
        """Every page of one GetMetricData request: (query, timestamps, values), calls made."""
        by_id = {f"q{index}": query for index, query in enumerate(batch)}
        params: dict[str, Any] = {
            "MetricDataQueries": [
                {"Id": qid, "MetricStat": q.metric_stat(self.period), "ReturnData": True}
                for qid, q in by_id.items()
            ],
            "StartTime": start,
            "EndTime": end,
            "ScanBy": "TimestampAscending",
        }
        timestamps: dict[str, list[datetime]] = defaultdict(list)
        values: dict[str, list[float]] = defaultdict(list)
        calls = 0
        while True:
            reply = client.get_metric_data(**params)
            calls += 1
            for item in reply.get("MetricDataResults", []):
                timestamps[item["Id"]].extend(_utc(t) for t in item.get("Timestamps", []))
                values[item["Id"]].extend(item.get("Values", []))
            token = reply.get("NextToken")
            if not token:
                break
            params["NextToken"] = token
        out = [(q, timestamps[qid], values[qid]) for qid, q in by_id.items() if timestamps[qid]]
        return out, calls


def _ids(rows: dict[str, list[Any]], keys: list[str]) -> list[str]:
    """Each row's id: its series and timestamp. The value stays out, so a datapoint CloudWatch
    revised between two overlapping polls is still one datapoint."""
    times = [epoch_us(moment) for moment in rows["time"]]
    contents = [
        (namespace, name, dims, None, unit)
        for namespace, name, dims, unit in zip(
            rows["namespace"], rows["name"], rows["dimensions"], rows["unit"], strict=True
        )
    ]
    return metric_ids(SOURCE, keys, times, contents, [0] * len(keys))


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _problem(action: str, region: str, err: bce.ClientError) -> str:
    info = err.response.get("Error", {})
    code = info.get("Code", "Error")
    message = info.get("Message", "")
    return f"{action} in {region} failed: {code}" + (f" ({message})" if message else "")


def _unreachable(err: Exception, session: AwsSession) -> AwsAccessError:
    if isinstance(err, bce.NoCredentialsError):
        return AwsAccessError(
            "no AWS credentials found",
            "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws configure`",
        )
    where = session.options.effective_endpoint or "the AWS endpoint"
    return AwsAccessError(
        f"cannot reach {where}: {err}", "check the network, --endpoint-url and AWS_ENDPOINT_URL"
    )
