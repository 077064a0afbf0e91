"""The run goes on when AWS refuses or throttles, and says what was not collected."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from tests.aws.faults import refuse, throttle

import ecsguard.aws.collectors  # noqa: F401  (registers the collectors)
from ecsguard.aws.collect import COLLECTORS, CollectContext, RunState, UndeclaredAction, collect
from ecsguard.aws.session import AwsOptions, AwsSession
from ecsguard.aws.snapshot import RegionInventory

REGION = "ap-northeast-1"


def session_for(server, **kw) -> AwsSession:  # type: ignore[no-untyped-def]
    return AwsSession(AwsOptions(regions=(REGION,), endpoint_url=server.endpoint, **kw))


def test_access_denied_is_recorded_and_the_run_continues(seeded, aws_env) -> None:  # type: ignore[no-untyped-def]
    server, _ = seeded
    session = session_for(server)
    refuse(session, "ecs", "ListServices")
    refuse(session, "iam", "GetAccountAuthorizationDetails", code="AccessDenied")
    snap = collect(session)
    gaps = [str(g) for g in snap.gaps]
    assert "not collected: AccessDeniedException on ecs:ListServices in ap-northeast-1" in gaps
    assert "not collected: AccessDenied on iam:GetAccountAuthorizationDetails in global" in gaps
    ecs = snap.regions[REGION].ecs
    assert ecs.services == []
    assert ecs.clusters and ecs.task_definitions, "everything else was still collected"
    assert snap.regions[REGION].ecr.repositories


def test_throttling_is_retried_then_succeeds(seeded, aws_env) -> None:  # type: ignore[no-untyped-def]
    server, _ = seeded
    session = session_for(server, max_attempts=4)
    state = throttle(session, "ecs", "ListClusters", times=2)
    snap = collect(session, only=["ecs"])
    assert state["sent"] == 2
    assert snap.gaps == []
    assert len(snap.regions[REGION].ecs.clusters) >= 3
    assert snap.api.retries >= 2


def test_throttling_past_the_retry_budget_becomes_a_gap(seeded, aws_env) -> None:  # type: ignore[no-untyped-def]
    server, _ = seeded
    session = session_for(server, max_attempts=2)
    throttle(session, "ecs", "ListAccountSettings", times=100)
    snap = collect(session, only=["ecs"])
    assert [str(g) for g in snap.gaps] == [
        "not collected: ThrottlingException on ecs:ListAccountSettings in ap-northeast-1"
    ]
    assert snap.regions[REGION].ecs.services, "the rest of ECS was collected"


def test_undeclared_action_is_a_programming_error(moto_server, aws_env) -> None:  # type: ignore[no-untyped-def]
    spec = COLLECTORS.get("ssm")
    run = RunState(session=session_for(moto_server), pool=ThreadPoolExecutor(1))
    ctx = CollectContext(spec=spec, region=REGION, run=run, inventory=RegionInventory())
    with pytest.raises(UndeclaredAction, match="ssm:GetParameter"):
        ctx.call("ssm", "GetParameter", Name="x")
