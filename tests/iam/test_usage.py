"""The service-to-identity map: who is used by what, per principal and per ECS service."""

from __future__ import annotations

from typing import Any

from tests.posture.builders import ACCOUNT, REGION, snapshot, task_definition

from ecsguard.aws.snapshot import Snapshot
from ecsguard.iam.usage import (
    IdentityMap,
    Use,
    describe_uses,
    identity_map,
)

ECS = f"arn:aws:ecs:{REGION}:{ACCOUNT}"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def role_arn(name: str, path: str = "/") -> str:
    return f"arn:aws:iam::{ACCOUNT}:role{path}{name}"


def user_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


def td_arn(family: str, revision: int = 1) -> str:
    return f"{ECS}:task-definition/{family}:{revision}"


def role(name: str, *statements: dict[str, Any], path: str = "/", **fields: Any) -> dict[str, Any]:
    policy = {"Version": "2012-10-17", "Statement": list(statements)}
    return {
        "RoleName": name,
        "Arn": role_arn(name, path),
        "Path": path,
        "RolePolicyList": [{"PolicyName": "inline", "PolicyDocument": policy}]
        if statements
        else [],
        "AttachedManagedPolicies": [],
        **fields,
    }


def user(name: str, *statements: dict[str, Any], groups: tuple[str, ...] = ()) -> dict[str, Any]:
    policy = {"Version": "2012-10-17", "Statement": list(statements)}
    return {
        "UserName": name,
        "Arn": user_arn(name),
        "GroupList": list(groups),
        "UserPolicyList": [{"PolicyName": "own", "PolicyDocument": policy}] if statements else [],
        "AttachedManagedPolicies": [],
    }


def group(name: str, *statements: dict[str, Any]) -> dict[str, Any]:
    policy = {"Version": "2012-10-17", "Statement": list(statements)}
    return {
        "GroupName": name,
        "Arn": f"arn:aws:iam::{ACCOUNT}:group/{name}",
        "GroupPolicyList": [{"PolicyName": "shared", "PolicyDocument": policy}],
        "AttachedManagedPolicies": [],
    }


def service(cluster: str, name: str, td: str, **fields: Any) -> dict[str, Any]:
    return {
        "serviceArn": f"{ECS}:service/{cluster}/{name}",
        "serviceName": name,
        "clusterArn": f"{ECS}:cluster/{cluster}",
        "taskDefinition": td,
        "launchType": "FARGATE",
        **fields,
    }


def allow(*actions: str, resource: str | list[str] = "*", **condition: Any) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": list(actions), "Resource": resource}
    return statement | ({"Condition": condition} if condition else {})


def kinds(imap: IdentityMap, arn: str) -> list[str]:
    return [u.kind for u in imap.uses_of(arn)]


def web_estate(**more: Any) -> Snapshot:
    """Service prod/web on web:2 (task role web-task, execution role web-execution)."""
    iam = more.pop("iam", {})
    ecs = more.pop("ecs", {})
    return snapshot(
        iam={"roles": [role("web-task"), role("web-execution")], **iam},
        ecs={
            "task_definitions": [
                task_definition(
                    "web",
                    2,
                    taskRoleArn=role_arn("web-task"),
                    executionRoleArn=role_arn("web-execution"),
                )
            ],
            "services": [service("prod", "web", td_arn("web", 2))],
            **ecs,
        },
        **more,
    )


# --- task and execution roles ------------------------------------------------------------------


def test_task_and_execution_roles_map_to_their_service_both_ways() -> None:
    imap = identity_map(web_estate())
    (use,) = imap.uses_of(role_arn("web-task"))
    assert (use.kind, use.region, use.cluster, use.service) == ("task_role", REGION, "prod", "web")
    assert use.task_definition == td_arn("web", 2)
    assert not use.derived
    assert kinds(imap, role_arn("web-execution")) == ["execution_role"]
    (identities,) = imap.services
    assert identities.arn == f"{ECS}:service/prod/web"
    assert identities.task_roles == (role_arn("web-task"),)
    assert identities.execution_roles == (role_arn("web-execution"),)
    assert identities.instance_roles == ()
    assert imap.service(identities.arn) is identities
    assert str(use) == "task role (cluster prod, service web, task definition web:2)"
    assert use.text("ja") == "タスクロール (クラスター prod, サービス web, タスク定義 web:2)"


def test_every_principal_has_an_entry_and_unknown_roles_are_listed() -> None:
    snap = snapshot(
        iam={"roles": [role("idle")], "users": [user("nobody")]},
        ecs={
            "task_definitions": [
                task_definition("a", taskRoleArn="arn:aws:iam::999999999999:role/elsewhere"),
                task_definition("b", taskRoleArn="idle-by-name-only"),
            ]
        },
    )
    imap = identity_map(snap)
    assert imap.uses_of(role_arn("idle")) == ()
    assert imap.uses_of(user_arn("nobody")) == ()
    assert imap.unknown_principals == [
        "arn:aws:iam::999999999999:role/elsewhere",
        "idle-by-name-only",
    ]


def test_a_role_named_without_its_arn_resolves_to_the_role() -> None:
    snap = snapshot(
        iam={"roles": [role("ops-task")]},
        ecs={"task_definitions": [task_definition("ops", taskRoleArn="ops-task")]},
    )
    assert kinds(identity_map(snap), role_arn("ops-task")) == ["task_role"]


def test_only_in_scope_revisions_count_and_a_latest_unused_revision_has_no_service() -> None:
    snap = snapshot(
        iam={"roles": [role("old-task"), role("new-task"), role("next-task")]},
        ecs={
            "task_definitions": [
                task_definition("web", 1, taskRoleArn=role_arn("old-task")),
                task_definition("web", 2, taskRoleArn=role_arn("new-task")),
                task_definition("web", 3, taskRoleArn=role_arn("next-task")),
            ],
            "services": [service("prod", "web", td_arn("web", 2))],
        },
    )
    imap = identity_map(snap)
    assert imap.task_definitions == (td_arn("web", 2), td_arn("web", 3))
    assert imap.uses_of(role_arn("old-task")) == ()
    assert imap.uses_of(role_arn("new-task"))[0].service == "web"
    (latest,) = imap.uses_of(role_arn("next-task"))
    assert (latest.cluster, latest.service, latest.task_definition) == ("", "", td_arn("web", 3))


def test_a_service_owns_its_deployments_and_the_tasks_it_started() -> None:
    snap = snapshot(
        iam={"roles": [role("v1-task"), role("v2-task"), role("v3-task")]},
        ecs={
            "task_definitions": [
                task_definition("web", 1, taskRoleArn=role_arn("v1-task")),
                task_definition("web", 2, taskRoleArn=role_arn("v2-task")),
                task_definition("web", 3, taskRoleArn=role_arn("v3-task")),
            ],
            "services": [
                service(
                    "prod",
                    "web",
                    td_arn("web", 3),
                    deployments=[{"taskDefinition": td_arn("web", 2)}],
                )
            ],
            "tasks": [
                {
                    "taskArn": f"{ECS}:task/prod/1",
                    "clusterArn": f"{ECS}:cluster/prod",
                    "group": "service:web",
                    "taskDefinitionArn": td_arn("web", 1),
                }
            ],
        },
    )
    (identities,) = identity_map(snap).services
    assert identities.task_roles == tuple(role_arn(n) for n in ("v1-task", "v2-task", "v3-task"))


def test_a_standalone_task_and_its_schedule_give_cluster_and_rule() -> None:
    rule_arn = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/nightly"
    snap = snapshot(
        iam={"roles": [role("job-task"), role("ecs-events")]},
        ecs={
            "task_definitions": [task_definition("job", 4, taskRoleArn=role_arn("job-task"))],
            "tasks": [
                {
                    "taskArn": f"{ECS}:task/batch/1",
                    "clusterArn": f"{ECS}:cluster/batch",
                    "group": "family:job",
                    "taskDefinitionArn": td_arn("job", 4),
                }
            ],
        },
        events={
            "rules": [
                {
                    "Arn": rule_arn,
                    "Name": "nightly",
                    "Targets": [
                        {
                            "Id": "t",
                            "Arn": f"{ECS}:cluster/batch",
                            "RoleArn": role_arn("ecs-events"),
                            # the family alone: EventBridge runs its latest revision
                            "EcsParameters": {"TaskDefinitionArn": "job"},
                        }
                    ],
                }
            ]
        },
    )
    imap = identity_map(snap)
    (task_use,) = imap.uses_of(role_arn("job-task"))
    assert (task_use.cluster, task_use.service, task_use.rule) == ("batch", "", rule_arn)
    (events_use,) = imap.uses_of(role_arn("ecs-events"))
    assert events_use.kind == "events_target_role"
    assert (events_use.cluster, events_use.rule) == ("batch", rule_arn)
    assert events_use.task_definition == td_arn("job", 4)


# --- instance roles -----------------------------------------------------------------------------


def ec2_estate(profile_arn: str | None) -> Snapshot:
    instance: dict[str, Any] = {"InstanceId": "i-1"}
    if profile_arn:
        instance["IamInstanceProfile"] = {"Arn": profile_arn}
    profile = {"Arn": f"arn:aws:iam::{ACCOUNT}:instance-profile/ecs-host"}
    return snapshot(
        iam={"roles": [role("ecs-host", InstanceProfileList=[profile])]},
        ecs={
            "clusters": [
                {
                    "clusterArn": f"{ECS}:cluster/batch",
                    "defaultCapacityProviderStrategy": [{"capacityProvider": "batch-asg"}],
                }
            ],
            "container_instances": [
                {
                    "containerInstanceArn": f"{ECS}:container-instance/batch/1",
                    "clusterArn": f"{ECS}:cluster/batch",
                    "ec2InstanceId": "i-1",
                }
            ],
            "services": [
                service("batch", "worker", td_arn("worker"), launchType=None),
                service("batch", "web", td_arn("web"), launchType="FARGATE"),
            ],
        },
        ec2={"instances": [instance]},
    )


def test_container_instances_give_the_instance_role_to_ec2_services_only() -> None:
    imap = identity_map(ec2_estate(f"arn:aws:iam::{ACCOUNT}:instance-profile/ecs-host"))
    (use,) = imap.uses_of(role_arn("ecs-host"))
    assert (use.kind, use.cluster, use.service) == ("instance_role", "batch", "")
    assert use.evidence == ("instance i-1 (instance profile ecs-host)",)
    launch = {s.service: (s.launch, s.instance_roles) for s in imap.services}
    # worker has no launch type: the cluster's default strategy names EC2 capacity
    assert launch == {"worker": ("EC2", (role_arn("ecs-host"),)), "web": ("FARGATE", ())}
    assert imap.unresolved_instances == ()


def test_a_container_instance_without_instance_profile_is_unresolved() -> None:
    imap = identity_map(ec2_estate(None))
    assert imap.uses_of(role_arn("ecs-host")) == ()
    assert imap.unresolved_instances == (f"{ECS}:container-instance/batch/1",)


# --- access keys in container environments ------------------------------------------------------


def key_estate(value: str, key_owner: str = "bot") -> Snapshot:
    container = {
        "name": "report",
        "environment": [
            {"name": "AWS_ACCESS_KEY_ID", "value": value},
            {"name": "AWS_SECRET_ACCESS_KEY", "value": SECRET},
        ],
    }
    return snapshot(
        iam={
            "users": [user("bot")],
            "access_keys": [{"AccessKeyId": KEY_ID, "UserName": key_owner, "Status": "Active"}],
        },
        ecs={
            "task_definitions": [task_definition("report", container=container)],
            "services": [service("batch", "report", td_arn("report"))],
        },
    )


def test_a_users_key_id_in_an_environment_maps_the_user_without_keeping_the_value() -> None:
    imap = identity_map(key_estate(f"prefix-{KEY_ID}"))
    (use,) = imap.uses_of(user_arn("bot"))
    assert use.kind == "access_key_in_env"
    assert (use.container, use.variable, use.access_key_id) == (
        "report",
        "AWS_ACCESS_KEY_ID",
        KEY_ID,
    )
    assert imap.services[0].env_key_users == (user_arn("bot"),)
    assert SECRET not in repr(imap) and SECRET not in str(imap.to_dict())


def test_a_key_id_of_no_known_user_maps_nobody() -> None:
    imap = identity_map(key_estate(KEY_ID, key_owner="someone-deleted"))
    assert imap.uses_of(user_arn("bot")) == ()
    assert imap.services[0].env_key_users == ()


def test_a_value_without_a_key_id_maps_nobody() -> None:
    assert identity_map(key_estate("not-a-key")).uses_of(user_arn("bot")) == ()


# --- service-linked, service and CloudTrail roles -----------------------------------------------


def test_service_linked_service_and_trail_roles() -> None:
    linked = role("AWSServiceRoleForECS", path="/aws-service-role/ecs.amazonaws.com/")
    snap = snapshot(
        iam={"roles": [linked, role("legacy-elb"), role("trail-logs")]},
        ecs={
            "services": [
                service("prod", "a", td_arn("a"), roleArn=linked["Arn"]),
                service("prod", "b", td_arn("b"), roleArn=role_arn("legacy-elb")),
            ]
        },
        cloudtrail={
            "trails": [
                {
                    "TrailARN": f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/org",
                    "CloudWatchLogsRoleArn": role_arn("trail-logs"),
                }
            ]
        },
    )
    imap = identity_map(snap)
    linked_uses = imap.uses_of(linked["Arn"])
    assert {(u.kind, u.service, u.aws_service) for u in linked_uses} == {
        ("service_linked", "", "ecs.amazonaws.com"),
        ("service_linked", "a", "ecs.amazonaws.com"),
    }
    assert imap.principals[linked["Arn"]].service_linked
    assert kinds(imap, role_arn("legacy-elb")) == ["service_role"]
    assert kinds(imap, role_arn("trail-logs")) == ["trail_logs_role"]


# --- deployers ----------------------------------------------------------------------------------

SCOPED_DEPLOY = (
    allow("ecs:UpdateService", resource=f"{ECS}:service/prod/*"),
    allow(
        "iam:PassRole",
        resource=[
            f"arn:aws:iam::{ACCOUNT}:role/*-task",
            f"arn:aws:iam::{ACCOUNT}:role/*-execution",
        ],
        StringEquals={"iam:PassedToService": "ecs-tasks.amazonaws.com"},
    ),
)


def deploy_estate(*principals: dict[str, Any], groups: tuple[dict[str, Any], ...] = ()) -> Snapshot:
    roles = [role("web-task"), role("web-execution"), role("api-task")]
    users = [p for p in principals if "UserName" in p]
    roles += [p for p in principals if "RoleName" in p]
    return snapshot(
        iam={"roles": roles, "users": users, "groups": list(groups)},
        ecs={
            "task_definitions": [
                task_definition(
                    "web",
                    taskRoleArn=role_arn("web-task"),
                    executionRoleArn=role_arn("web-execution"),
                ),
                task_definition("api", taskRoleArn=role_arn("api-task")),
            ],
            "services": [
                service("prod", "web", td_arn("web")),
                service("staging", "api", td_arn("api")),
            ],
        },
    )


def deployed(imap: IdentityMap, arn: str) -> dict[str, Use]:
    return {f"{u.cluster}/{u.service}": u for u in imap.uses_of(arn) if u.kind == "deployer"}


def test_a_scoped_deploy_policy_deploys_the_services_it_names() -> None:
    imap = identity_map(deploy_estate(user("ci", *SCOPED_DEPLOY)))
    uses = deployed(imap, user_arn("ci"))
    assert list(uses) == ["prod/web"]  # UpdateService is limited to prod
    use = uses["prod/web"]
    assert use.derived and not use.incidental
    assert not use.conditional  # iam:PassedToService is decided for ECS tasks
    assert use.evidence == ("inline policy own, statement 0", "inline policy own, statement 1")
    web = next(s for s in imap.services if s.service == "web")
    assert web.deployers == (user_arn("ci"),) and web.incidental_deployers == ()


def test_register_task_definition_with_pass_role_also_deploys() -> None:
    policy = (allow("ecs:RegisterTaskDefinition"), allow("iam:PassRole"))
    uses = deployed(identity_map(deploy_estate(user("ci", *policy))), user_arn("ci"))
    assert set(uses) == {"prod/web", "staging/api"}


def test_without_pass_role_to_the_services_roles_there_is_no_deployer() -> None:
    no_pass = (allow("ecs:UpdateService"), allow("ecs:RegisterTaskDefinition"))
    other_service = (
        allow("ecs:UpdateService"),
        allow("iam:PassRole", StringEquals={"iam:PassedToService": "lambda.amazonaws.com"}),
    )
    wrong_role = (allow("ecs:UpdateService"), allow("iam:PassRole", resource=role_arn("x")))
    imap = identity_map(
        deploy_estate(user("a", *no_pass), user("b", *other_service), user("c", *wrong_role))
    )
    assert [deployed(imap, user_arn(n)) for n in "abc"] == [{}, {}, {}]


def test_a_service_without_roles_needs_no_pass_role() -> None:
    snap = snapshot(
        iam={"users": [user("ops", allow("ecs:UpdateService"))]},
        ecs={
            "task_definitions": [task_definition("plain")],
            "services": [service("prod", "plain", td_arn("plain"))],
        },
    )
    assert list(deployed(identity_map(snap), user_arn("ops"))) == ["prod/plain"]


def test_an_unconditional_deny_removes_the_deploy_right_and_a_conditional_one_does_not() -> None:
    grant = (allow("ecs:*"), allow("iam:PassRole"))
    deny = {"Effect": "Deny", "Action": "ecs:*", "Resource": "*"}
    deny_without_mfa = deny | {"Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}}}
    imap = identity_map(deploy_estate(user("a", *grant, deny), user("b", *grant, deny_without_mfa)))
    assert deployed(imap, user_arn("a")) == {}
    assert set(deployed(imap, user_arn("b"))) == {"prod/web", "staging/api"}


def test_an_undecided_condition_marks_the_deployer_conditional() -> None:
    tagged = allow("ecs:UpdateService", StringEquals={"aws:ResourceTag/team": "web"})
    imap = identity_map(deploy_estate(user("ops", tagged, allow("iam:PassRole"))))
    assert deployed(imap, user_arn("ops"))["prod/web"].conditional


def test_administrators_deploy_incidentally() -> None:
    admin = user("root-like", allow("*"))
    power = user("power", {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    power["UserPolicyList"][0]["PolicyDocument"]["Statement"].append(allow("iam:PassRole"))
    service_admin = user("ecs-admin", allow("ecs:*"), allow("iam:PassRole"))
    imap = identity_map(deploy_estate(admin, power, service_admin))
    assert deployed(imap, user_arn("root-like"))["prod/web"].incidental
    assert deployed(imap, user_arn("power"))["prod/web"].incidental
    assert not deployed(imap, user_arn("ecs-admin"))["prod/web"].incidental
    web = next(s for s in imap.services if s.service == "web")
    assert web.deployers == (user_arn("ecs-admin"),)
    assert web.incidental_deployers == (user_arn("power"), user_arn("root-like"))


def test_deploy_rights_through_a_group_map_the_member_and_the_group() -> None:
    ci = group("ci", *SCOPED_DEPLOY)
    imap = identity_map(deploy_estate(user("runner", groups=("ci",)), groups=(ci,)))
    member = deployed(imap, user_arn("runner"))["prod/web"]
    assert any(e.startswith("group ci:") for e in member.evidence)
    assert "prod/web" in deployed(imap, ci["Arn"])
    web = next(s for s in imap.services if s.service == "web")
    assert web.deployers == (user_arn("runner"),)  # a group cannot act: its members are listed
    assert imap.principals[user_arn("runner")].inline_policies == ("ci/shared",)


def test_policy_variables_in_resources_match_like_wildcards() -> None:
    scoped = allow("ecs:UpdateService", resource=f"{ECS}:service/${{aws:PrincipalTag/env}}/*")
    imap = identity_map(deploy_estate(user("ops", scoped, allow("iam:PassRole"))))
    assert set(deployed(imap, user_arn("ops"))) == {"prod/web", "staging/api"}


def test_to_dict_is_plain_data() -> None:
    data = identity_map(web_estate()).to_dict()
    assert data["uses"][role_arn("web-task")][0]["kind"] == "task_role"
    assert data["services"][0]["task_roles"] == [role_arn("web-task")]
    assert data["principals"][role_arn("web-task")]["type"] == "role"


def test_from_dict_gives_back_the_map() -> None:
    imap = identity_map(deploy_estate(user("ops", *SCOPED_DEPLOY)))
    again = IdentityMap.from_dict(imap.to_dict())
    assert again == imap
    assert again.to_dict() == imap.to_dict()


def test_a_use_from_dict_ignores_keys_it_does_not_know() -> None:
    use = Use(role_arn("web-task"), "task_role", REGION, "prod", "web", evidence=("why",))
    assert Use.from_dict({**use.to_dict(), "added_later": 1}) == use
    assert Use.from_dict(use.to_dict()).evidence == ("why",)


# --- the demo estate ----------------------------------------------------------------------------


def test_demo_map(demo_snapshot: Snapshot) -> None:
    imap = identity_map(demo_snapshot)
    account = demo_snapshot.account
    arn = f"arn:aws:iam::{account}:role/notifications-task"
    configured = [u for u in imap.uses_of(arn) if not u.derived]
    assert [(u.kind, u.cluster, u.service) for u in configured] == [
        ("task_role", "prod", "notifications")
    ]
    # AdministratorAccess makes the task role an (incidental) deployer of everything too
    assert all(u.incidental for u in imap.uses_of(arn) if u.derived)
    bot = imap.uses_of(f"arn:aws:iam::{account}:user/legacy-batch-bot")
    assert [(u.kind, u.cluster, u.container, u.variable) for u in bot] == [
        ("access_key_in_env", "batch", "nightly-report", "AWS_ACCESS_KEY_ID")
    ]
    api = next(s for s in imap.services if (s.cluster, s.service) == ("prod", "api"))
    ci_deployer = f"arn:aws:iam::{account}:user/ci-deployer"
    assert ci_deployer in api.deployers
    assert f"arn:aws:iam::{account}:user/sato.hiroshi" in api.incidental_deployers
    events = imap.uses_of(f"arn:aws:iam::{account}:role/ecs-events")
    assert [(u.kind, u.cluster) for u in events] == [("events_target_role", "batch")]


def test_a_use_in_one_word_and_in_short() -> None:
    td = td_arn("web", 4)
    assert Use("r", "task_role", REGION, "prod", "web", td).short() == "task role prod/web"
    assert Use("r", "task_role", REGION, "prod", "", td).place() == "web:4"
    rule = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/nightly"
    assert Use("r", "events_target_role", REGION, "batch", rule=rule).place() == "nightly"
    assert Use("r", "instance_role", REGION, "prod").place() == "prod"
    linked = Use("r", "service_linked", aws_service="ecs.amazonaws.com")
    assert linked.short("ja") == "サービスにリンクされたロール ecs.amazonaws.com"
    assert Use("r", "trail_logs_role").short() == "CloudTrail logs role"


def test_describe_uses_sums_up_deploy_rights() -> None:
    def deploys(cluster: str, name: str, incidental: bool = False) -> Use:
        return Use("u", "deployer", REGION, cluster, name, derived=True, incidental=incidental)

    uses = [
        Use("u", "task_role", REGION, "prod", "web", td_arn("web", 1)),
        Use("u", "task_role", REGION, "prod", "web", td_arn("web", 2)),
        deploys("prod", "web"),
        deploys("staging", "api"),
        deploys("prod", "api", incidental=True),
    ]
    assert describe_uses(uses, short=True) == [
        "task role prod/web",  # two revisions, one line
        "can deploy prod/web, staging/api",
        "can deploy 1 service through a blanket grant",
    ]
    assert describe_uses(uses)[:2] == [
        "task role (cluster prod, service web, task definition web:1)",
        "task role (cluster prod, service web, task definition web:2)",
    ]
    assert describe_uses(uses, "ja")[-2:] == [
        "デプロイ可能: prod/web, staging/api",
        "包括的な権限でサービス 1 件をデプロイ可能",
    ]
    assert describe_uses([]) == []
