"""The IAM roles of ECS task definitions: what the task role can do, and whether the execution role
holds more than pulling images, writing logs and reading secrets needs.

Rights are judged by `ecsguard.iam.policy`: only grants that hold on every resource without a
condition count, and permissions boundaries are not applied yet (so a role whose boundary removes
a right may still be reported as holding it). A task definition whose role is not in the snapshot
(another account's role, or a deleted one) is not assessed by these checks.
"""

from __future__ import annotations

from collections.abc import Iterator

from ecsguard.iam.policy import admin_grant, escalation_paths, statements_of
from ecsguard.posture.check import Result, check
from ecsguard.posture.context import CheckContext, Resource, family_and_revision

TD = "AWS::ECS::TaskDefinition"
NEEDS = (
    "ecs:ListTaskDefinitions",
    "ecs:DescribeTaskDefinition",
    "iam:GetAccountAuthorizationDetails",
)


def _roles(ctx: CheckContext, field: str) -> Iterator[tuple[str, Resource, Resource]]:
    """(region, task definition, role) for in-scope revisions whose `field` names a known role."""
    for region, td in ctx.task_definitions():
        role = ctx.role(td.get(field))
        if role is not None:
            yield region, td, role


def _params(td: Resource, role: Resource, **more: str) -> dict[str, str]:
    family, revision = family_and_revision(td["taskDefinitionArn"])
    return {"role": role.get("RoleName", "?"), "task_definition": f"{family}:{revision}", **more}


def _admin_evidence(ctx: CheckContext, role: Resource) -> str:
    """Evidence like `AdministratorAccess (managed), statement 0: *`; "" for a non-admin role."""
    grant = admin_grant(statements_of(role, ctx.snapshot.iam))
    return f"{grant[1]}: {grant[0]}" if grant else ""


@check(
    id="ecs.task_role_admin",
    severity="critical",
    pillar="iam",
    resource_type=TD,
    needs=NEEDS,
    title={
        "en": "ECS task roles are not administrators",
        "ja": "ECS タスクロールは管理者権限を持たない",
    },
    description={
        "en": "Every process in the task can use the task role's credentials, and anyone who runs "
        "code in the container (an injected command, a compromised dependency) gets them from the "
        "credentials endpoint. A task role with every action, or every IAM action, on every "
        "resource turns one vulnerable container into control of the whole account.",
        "ja": "タスクロールの認証情報はタスク内のすべてのプロセスが使え、コンテナ内でコードを実行"
        "できた者（コマンドインジェクション、侵害された依存ライブラリ）は認証情報エンドポイントから"
        "取得できる。全アクション、または IAM の全アクションを全リソースに許可されたタスクロールで"
        "は、脆弱なコンテナ一つがアカウント全体の掌握につながる。",
    },
    remediation={
        "en": "Give the task a role of its own with only the actions and resources the application "
        "calls (IAM Access Analyzer can generate a policy from CloudTrail activity); detach "
        "AdministratorAccess, IAMFullAccess and wildcard statements.",
        "ja": "タスク専用のロールを作り、アプリケーションが呼び出すアクションとリソースだけを許可"
        "する（IAM Access Analyzer で CloudTrail の履歴からポリシーを生成できる）。"
        "AdministratorAccess、IAMFullAccess、ワイルドカードのステートメントを外す。",
    },
    fail={
        "en": "task role {role} of {task_definition} is admin-equivalent: {grant}",
        "ja": "{task_definition} のタスクロール {role} は管理者相当: {grant}",
    },
    passed={
        "en": "task role {role} of {task_definition} is not admin-equivalent",
        "ja": "{task_definition} のタスクロール {role} は管理者相当ではない",
    },
)
def task_role_admin(ctx: CheckContext) -> Iterator[Result]:
    for region, td, role in _roles(ctx, "taskRoleArn"):
        grant = _admin_evidence(ctx, role)
        yield Result(td["taskDefinitionArn"], region, not grant, _params(td, role, grant=grant))


@check(
    id="ecs.task_role_escalation",
    severity="high",
    pillar="iam",
    resource_type=TD,
    needs=NEEDS,
    title={
        "en": "ECS task roles cannot escalate their own privileges",
        "ja": "ECS タスクロールは自身の権限を昇格できない",
    },
    description={
        "en": "Some rights lead to all others: writing or attaching IAM policies, creating keys or "
        "passwords for other users, or passing any role to new compute (iam:PassRole with "
        "ecs:RegisterTaskDefinition and ecs:RunTask, lambda:CreateFunction, ec2:RunInstances...). "
        "Code in the container can follow such a path to administrator. Roles that are already "
        "administrators are reported by ecs.task_role_admin instead.",
        "ja": "IAM ポリシーの作成・アタッチ、他ユーザーのアクセスキーやパスワードの作成、新しい"
        "コンピュートへの任意のロールの受け渡し（iam:PassRole と ecs:RegisterTaskDefinition・"
        "ecs:RunTask、lambda:CreateFunction、ec2:RunInstances など）は、他のすべての権限への"
        "入り口になる。コンテナ内のコードはこの経路で管理者に到達できる。既に管理者相当のロールは"
        "ecs.task_role_admin で報告する。",
    },
    remediation={
        "en": "Remove the IAM write actions from the task role, and limit iam:PassRole to the "
        "specific role ARNs the application must pass (with an iam:PassedToService condition). "
        "Deployments belong in a CI/CD role, not in a running task.",
        "ja": "タスクロールから IAM の書き込みアクションを外し、iam:PassRole はアプリケーションが"
        "渡す必要のあるロール ARN に限定する（iam:PassedToService 条件を付ける）。デプロイ権限は"
        "実行中のタスクではなく CI/CD 用ロールに持たせる。",
    },
    fail={
        "en": "task role {role} of {task_definition} can escalate privileges: {paths}",
        "ja": "{task_definition} のタスクロール {role} は権限昇格が可能: {paths}",
    },
    passed={
        "en": "task role {role} of {task_definition} has no known escalation path",
        "ja": "{task_definition} のタスクロール {role} に既知の権限昇格経路はない",
    },
)
def task_role_escalation(ctx: CheckContext) -> Iterator[Result]:
    for region, td, role in _roles(ctx, "taskRoleArn"):
        statements = statements_of(role, ctx.snapshot.iam)
        if admin_grant(statements):
            continue  # reported, more severely, by ecs.task_role_admin
        paths = "; ".join(str(p) for p in escalation_paths(statements))
        yield Result(td["taskDefinitionArn"], region, not paths, _params(td, role, paths=paths))


@check(
    id="ecs.execution_role_admin",
    severity="high",
    pillar="iam",
    resource_type=TD,
    needs=NEEDS,
    title={
        "en": "ECS task execution roles are not administrators",
        "ja": "ECS タスク実行ロールは管理者権限を持たない",
    },
    description={
        "en": "The execution role is used by the ECS agent and Fargate to pull images, write logs "
        "and fetch secrets; AmazonECSTaskExecutionRolePolicy plus read access to the task's own "
        "secrets is all it needs. An administrator execution role serves none of that and widens "
        "the blast radius: whoever may pass it to ECS, and anything else that uses it, holds "
        "full rights.",
        "ja": "実行ロールは ECS エージェントと Fargate がイメージの取得、ログの書き込み、"
        "シークレットの取得に使う。必要なのは AmazonECSTaskExecutionRolePolicy と、"
        "そのタスクのシークレットの読み取りだけである。管理者相当の実行ロールはそのどれにも不要で、影響範囲を広げる。"
        "このロールを ECS に渡せる者や、このロールを使う他の用途がすべて全権限を持つことになる。",
    },
    remediation={
        "en": "Use a dedicated execution role with AmazonECSTaskExecutionRolePolicy and "
        "secretsmanager:GetSecretValue / ssm:GetParameters (and kms:Decrypt) limited to the "
        "task's own secrets; detach administrator policies.",
        "ja": "AmazonECSTaskExecutionRolePolicy と、そのタスクのシークレットに限定した "
        "secretsmanager:GetSecretValue・ssm:GetParameters（と kms:Decrypt）だけを持つ専用の実行"
        "ロールを使い、管理者ポリシーを外す。",
    },
    fail={
        "en": "execution role {role} of {task_definition} is admin-equivalent: {grant}",
        "ja": "{task_definition} の実行ロール {role} は管理者相当: {grant}",
    },
    passed={
        "en": "execution role {role} of {task_definition} is not admin-equivalent",
        "ja": "{task_definition} の実行ロール {role} は管理者相当ではない",
    },
)
def execution_role_admin(ctx: CheckContext) -> Iterator[Result]:
    for region, td, role in _roles(ctx, "executionRoleArn"):
        grant = _admin_evidence(ctx, role)
        yield Result(td["taskDefinitionArn"], region, not grant, _params(td, role, grant=grant))
