"""Collector framework: declarations, the context collectors receive, and the concurrent run.

A collector is a function of one `CollectContext` returning its Section. It declares the IAM
actions it calls; `CollectContext.call` refuses an undeclared action, so the auditor policy derived
from the declarations (`ecsguard iam auditor-policy`) cannot drift from the code.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal, TypeVar

import botocore.exceptions as bce
from botocore import xform_name

from ecsguard.aws.session import AwsSession
from ecsguard.aws.snapshot import ApiStats, Gap, IamSection, RegionInventory, Section, Snapshot
from ecsguard.core.registry import Registry

T = TypeVar("T")
R = TypeVar("R")

ACCESS_DENIED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnauthorizedException",
        "AuthorizationError",
        "AuthorizationErrorException",
        "UnrecognizedClientException",
        "AuthFailure",
        "OptInRequired",
        "InvalidClientTokenId",
    }
)
THROTTLED = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ThrottledException",
        "RequestThrottled",
        "SlowDown",
    }
)


# The largest page each list API allows: the fewest calls for a large estate.
MAX_PAGE_SIZE = {
    "ecs:ListClusters": 100,
    "ecs:ListServices": 100,
    "ecs:ListTaskDefinitions": 100,
    "ecs:ListTasks": 100,
    "ecs:ListAccountSettings": 10,
    "iam:GetAccountAuthorizationDetails": 1000,
    "iam:ListAccessKeys": 100,
    "logs:DescribeLogGroups": 50,
    "logs:DescribeMetricFilters": 50,
    "logs:DescribeSubscriptionFilters": 50,
    "events:ListRules": 100,
    "events:ListTargetsByRule": 100,
    "cloudwatch:DescribeAlarms": 100,
    "ecr:DescribeRepositories": 1000,
    "secretsmanager:ListSecrets": 100,
    "ssm:DescribeParameters": 50,
}

# Called by the session itself: the identity preflight and `--region all`.
SESSION_ACTIONS = frozenset({"sts:GetCallerIdentity", "ec2:DescribeRegions"})


@dataclass(frozen=True)
class CollectorSpec:
    name: str
    fn: Callable[[CollectContext], Section]
    actions: frozenset[str]
    scope: Literal["regional", "global"] = "regional"
    needs: tuple[str, ...] = ()


COLLECTORS: Registry[CollectorSpec] = Registry("collector")


def collector(
    name: str,
    *,
    actions: Iterable[str],
    scope: Literal["regional", "global"] = "regional",
    needs: Sequence[str] = (),
) -> Callable[[Callable[[CollectContext], Section]], Callable[[CollectContext], Section]]:
    """Register a collector under the Snapshot section name it fills."""

    def decorate(fn: Callable[[CollectContext], Section]) -> Callable[[CollectContext], Section]:
        COLLECTORS.add(name, CollectorSpec(name, fn, frozenset(actions), scope, tuple(needs)))
        return fn

    return decorate


class UndeclaredAction(RuntimeError):
    """A collector called an API it did not declare: a programming error, never swallowed."""


def plain(value: Any) -> Any:
    """AWS response -> JSON-ready value: datetimes as ISO UTC, bytes as text, no metadata."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


@dataclass
class RunState:
    """What all collectors of one run share: the session, the fan-out pool, gaps."""

    session: AwsSession
    pool: ThreadPoolExecutor
    gaps: list[Gap] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_gap(self, gap: Gap) -> None:
        with self.lock:
            self.gaps.append(gap)


@dataclass
class CollectContext:
    """Everything a collector gets: its region, earlier sections it needs, and safe API calls."""

    spec: CollectorSpec
    region: str
    run: RunState
    inventory: RegionInventory

    def call(self, service: str, action: str, *, ok: Sequence[str] = (), **params: Any) -> Any:
        """One API call. AccessDenied and exhausted throttling become a recorded Gap (returns
        None); error codes listed in `ok` (such as 'not found' for an optional policy) return None
        silently; anything else propagates."""
        self._check_declared(service, action)
        client = self.run.session.client(service, self.region)
        try:
            return plain(getattr(client, xform_name(action))(**params))
        except bce.ClientError as err:
            if err.response.get("Error", {}).get("Code", "") in ok:
                return None
            self._record_gap(service, action, err)
            return None

    def pages(self, service: str, action: str, key: str, **params: Any) -> list[Any]:
        """Every item under `key` across all pages (see `pages_by`)."""
        return self.pages_by(service, action, (key,), **params)[key]

    def pages_by(
        self, service: str, action: str, keys: Sequence[str], **params: Any
    ) -> dict[str, list[Any]]:
        """Items under each of `keys` across all pages, in one pass; on a refused page, what
        came before plus a recorded Gap."""
        self._check_declared(service, action)
        client = self.run.session.client(service, self.region)
        method = xform_name(action)
        items: dict[str, list[Any]] = {key: [] for key in keys}
        if not client.can_paginate(method):
            reply = self.call(service, action, **params) or {}
            return {key: list(reply.get(key, [])) for key in keys}
        size = MAX_PAGE_SIZE.get(f"{service}:{action}")
        if size:
            params.setdefault("PaginationConfig", {"PageSize": size})
        try:
            for page in client.get_paginator(method).paginate(**params):
                for key in keys:
                    items[key].extend(plain(page.get(key, [])))
        except bce.ClientError as err:
            self._record_gap(service, action, err)
        return items

    def _record_gap(self, service: str, action: str, err: bce.ClientError) -> None:
        """AccessDenied or exhausted throttling becomes a Gap; any other error propagates."""
        info = err.response.get("Error", {})
        code = info.get("Code", "")
        if code not in ACCESS_DENIED and code not in THROTTLED:
            raise err
        gap = Gap(
            service=service,
            action=action,
            region=self.gap_region,
            error_code=code,
            message=info.get("Message", ""),
        )
        self.run.add_gap(gap)

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """Run `fn` over items on the shared fan-out pool (bounded), keeping order."""
        return list(self.run.pool.map(fn, items))

    @property
    def gap_region(self) -> str:
        """Where a gap is reported: the region, or "global" for global services such as IAM."""
        return "global" if self.spec.scope == "global" else self.region

    def _check_declared(self, service: str, action: str) -> None:
        if f"{service}:{action}" not in self.spec.actions:
            raise UndeclaredAction(
                f"collector {self.spec.name!r} calls {service}:{action} without declaring it"
            )


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


ProgressFn = Callable[[str, int, int], None]


def collect(
    session: AwsSession,
    regions: Sequence[str] | None = None,
    only: Sequence[str] | None = None,
    progress: ProgressFn | None = None,
) -> Snapshot:
    """Collect a Snapshot: every (region, collector) pair on a bounded pool, dependents after
    the sections they need."""
    import ecsguard.aws.collectors  # noqa: F401  (registers the collectors)

    started = time.monotonic()
    regions = list(regions) if regions else session.resolve_regions()  # offline validation first
    identity = session.identity()
    specs = [spec for _, spec in COLLECTORS if not only or spec.name in only]
    inventories = {region: RegionInventory() for region in regions}
    snapshot = Snapshot(
        account=identity["account"],
        caller_arn=identity["arn"],
        endpoint_url=session.options.effective_endpoint,
    )
    jobs = [
        (spec, region)
        for spec in specs
        for region in (regions if spec.scope == "regional" else regions[:1])
    ]
    done = 0
    workers = session.options.max_workers
    with (
        ThreadPoolExecutor(workers, thread_name_prefix="fanout") as fanout,
        ThreadPoolExecutor(workers, thread_name_prefix="collect") as outer,
    ):
        run = RunState(session=session, pool=fanout)

        def one(job: tuple[CollectorSpec, str]) -> tuple[CollectorSpec, str, Section]:
            spec, region = job
            ctx = CollectContext(spec=spec, region=region, run=run, inventory=inventories[region])
            return spec, region, spec.fn(ctx)

        waves = [[j for j in jobs if not j[0].needs], [j for j in jobs if j[0].needs]]
        for wave in waves:
            for future in as_completed([outer.submit(one, job) for job in wave]):
                spec, region, section = future.result()
                if isinstance(section, IamSection):
                    snapshot.iam = section
                else:
                    setattr(inventories[region], spec.name, section)
                done += 1
                if progress:
                    progress(f"{spec.name} {region}", done, len(jobs))
    snapshot.regions = inventories
    snapshot.gaps = sorted(run.gaps, key=lambda g: (g.region, g.service, g.action))
    counter = session.counter
    snapshot.api = ApiStats(
        calls=dict(sorted(counter.calls.items())),
        total_calls=counter.total,
        http_requests=counter.http_requests,
        retries=counter.retries,
    )
    snapshot.duration_seconds = round(time.monotonic() - started, 3)
    return snapshot


#: what `ecsguard metrics poll` calls besides the collectors (ecsguard.monitor.cloudwatch)
METRICS_POLL_ACTIONS = ("cloudwatch:GetMetricData", "elasticloadbalancing:DescribeTargetGroups")


def auditor_policy() -> dict[str, Any]:
    """The read-only IAM policy ecsguard needs, derived from what the collectors declare."""
    import ecsguard.aws.collectors  # noqa: F401

    actions = sorted(
        {a for _, spec in COLLECTORS for a in spec.actions} | {"sts:GetCallerIdentity"}
    )
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EcsguardReadOnlyInventory",
                "Effect": "Allow",
                "Action": actions,
                "Resource": "*",
            },
            {
                "Sid": "EcsguardMetricsPolling",
                "Effect": "Allow",
                "Action": sorted(METRICS_POLL_ACTIONS),
                "Resource": "*",
            },
        ],
    }
