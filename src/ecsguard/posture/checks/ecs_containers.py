"""ECS container definitions: privilege, users, kernel capabilities, host namespaces."""

from __future__ import annotations

from collections.abc import Iterator

from ecsguard.posture.check import Result, check
from ecsguard.posture.context import CheckContext

TD = "AWS::ECS::TaskDefinition"
NEEDS_TD = ("ecs:ListTaskDefinitions", "ecs:DescribeTaskDefinition")


@check(
    id="ecs.container_privileged",
    severity="high",
    pillar="security",
    resource_type=TD,
    controls=["FSBP:ECS.4"],
    needs=NEEDS_TD,
    title={
        "en": "ECS containers run without privileged mode",
        "ja": "ECS コンテナは特権モードなしで実行されている",
    },
    description={
        "en": "A privileged container has root on the host: every device, every kernel "
        "capability. An escape from it is an escape to the instance and its other tasks.",
        "ja": "特権コンテナはホストの root 権限（全デバイス、全カーネルケーパビリティ）を持つ。"
        "コンテナからの脱出はインスタンスと他のタスクへの侵入を意味する。",
    },
    remediation={
        "en": "Register a new revision with privileged false (or unset); grant only the "
        "specific linuxParameters.capabilities the workload needs.",
        "ja": "privileged を false（または未設定）にした新しいリビジョンを登録し、必要な "
        "linuxParameters.capabilities のみを付与する。",
    },
    fail={
        "en": "privileged containers: {containers}",
        "ja": "特権モードのコンテナ: {containers}",
    },
    passed={"en": "no container is privileged", "ja": "特権モードのコンテナはない"},
)
def container_privileged(ctx: CheckContext) -> Iterator[Result]:
    for region, td in ctx.task_definitions():
        bad = [c["name"] for c in td.get("containerDefinitions", []) if c.get("privileged")]
        yield Result(td["taskDefinitionArn"], region, not bad, {"containers": ", ".join(bad)})
