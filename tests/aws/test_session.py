"""Sessions as the AWS CLI builds them: regions, assume-role, endpoint, counting."""

from __future__ import annotations

import pytest

from ecsguard.aws.session import AwsOptions, AwsSession
from ecsguard.core.errors import AwsAccessError, UserError


def test_region_all_lists_enabled_regions(moto_server, aws_env) -> None:  # type: ignore[no-untyped-def]
    session = AwsSession(AwsOptions(regions=("all",), endpoint_url=moto_server.endpoint))
    regions = session.resolve_regions()
    assert "ap-northeast-1" in regions and len(regions) > 10
    assert session.counter.calls["ec2:DescribeRegions"] == 1


def test_regions_are_deduplicated_and_validated_offline() -> None:
    session = AwsSession(AwsOptions(regions=("ap-northeast-1", "us-east-1", "ap-northeast-1")))
    assert session.resolve_regions() == ["ap-northeast-1", "us-east-1"]
    with pytest.raises(UserError, match="did you mean us-east-1"):
        AwsSession(AwsOptions(regions=("us-eats-1",))).resolve_regions()


def test_assume_role_runs_as_the_role(moto_server, aws_env) -> None:  # type: ignore[no-untyped-def]
    arn = "arn:aws:iam::123456789012:role/ecsguard-audit"
    session = AwsSession(
        AwsOptions(regions=("ap-northeast-1",), endpoint_url=moto_server.endpoint, role_arn=arn)
    )
    assert ":assumed-role/ecsguard-audit/" in session.identity()["arn"]


def test_endpoint_from_the_standard_variable(moto_server, aws_env) -> None:  # type: ignore[no-untyped-def]
    session = AwsSession(AwsOptions(regions=("ap-northeast-1",)))  # AWS_ENDPOINT_URL only
    assert session.options.effective_endpoint == moto_server.endpoint
    assert session.identity()["account"] == "123456789012"


def test_counter_counts_calls_and_http_requests(moto_server, aws_env) -> None:  # type: ignore[no-untyped-def]
    session = AwsSession(AwsOptions(regions=("ap-northeast-1",), endpoint_url=moto_server.endpoint))
    ecs = session.client("ecs")
    ecs.list_clusters()
    ecs.list_clusters()
    assert session.counter.calls["ecs:ListClusters"] == 2
    assert session.counter.total == 2 and session.counter.http_requests == 2
    assert session.counter.retries == 0


def test_refused_credentials(moto_server, aws_env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    session = AwsSession(AwsOptions(regions=("ap-northeast-1",), endpoint_url=moto_server.endpoint))
    from tests.aws.faults import refuse

    refuse(session, "sts", "GetCallerIdentity", code="InvalidClientTokenId")
    with pytest.raises(AwsAccessError, match="AWS refused the credentials: InvalidClientTokenId"):
        session.identity()
