"""Risk categories of IAM actions: which actions, granted without limits, put an account at risk.

Standalone policy analysis (`ecsguard iam analyze-policy`) reports a risk when a policy allows an
action of a category **unscoped**: on every resource (`"*"`, or `NotResource`) and without a
`Condition`. The categories, and what each means here:

- **privilege_escalation**: a combination of actions that lets the holder give itself more rights
  (rewrite its own policies, act as another user, run code under a role it passes). Defined by the
  method table `ESCALATION_PATHS` in `ecsguard.iam.policy`, which the posture checks use too.
- **resource_exposure**: actions that change who may access a resource: its resource-based
  policy, ACL, grants or sharing (`s3:PutBucketPolicy`, `kms:CreateGrant`, `lambda:AddPermission`,
  `iam:UpdateAssumeRolePolicy`, `ram:CreateResourceShare`, ...). The rule: every action AWS files
  under the access level "Permissions management", plus `RESOURCE_EXPOSURE_EXTRA`, actions AWS files
  under "Write" that share or publish a resource all the same (AMI launch permissions, public
  snapshots, function URLs). Reads filed under that level (`billing:GetResourcePolicy`) are not.
- **credentials_exposure**: actions whose answer is, or which set, a credential that carries rights
  the caller does not already have: another user's access key or console password, another role's
  temporary credentials, an instance's administrator password or SSH access, database login
  credentials. Tokens that only carry the caller's own rights (`ecr:GetAuthorizationToken`,
  `sts:GetSessionToken`, `sts:GetFederationToken`) are left out: holding them adds nothing.
  Secret values are data, not credentials of an AWS identity: see data_exfiltration.
- **data_exfiltration**: reads that return stored data in bulk: objects, items, parameters, secret
  values, queue messages, stream records, log events, and `kms:Decrypt`, which opens anything
  encrypted under any key the grant covers.
- **service_wildcard**: every action of a service, today's and those AWS adds later: `ecs:*`, `*`,
  or a `NotAction` that leaves the service out entirely; unless a Deny takes part of it back.
- **infrastructure_modification**: actions that change resources (access levels Write,
  Permissions management, Tagging) granted on `"*"` although AWS lets them be limited to named
  resources. An action that accepts only `"*"` (`xray:PutTraceSegments`) cannot be narrowed, so
  granting it on `"*"` is no violation of least privilege and is not reported here; nor are the
  few reads AWS files under those levels (`iot:ListSubscriptions`).

The tables hold action names as AWS spells them. `category_actions` resolves them against the
action database once per process; a name the database does not know is skipped (a test keeps the
tables and the database in step).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from ecsguard.iam import actions

CATEGORIES = (
    "privilege_escalation",
    "resource_exposure",
    "credentials_exposure",
    "data_exfiltration",
    "service_wildcard",
    "infrastructure_modification",
)

DESCRIPTIONS = {
    "privilege_escalation": "can give itself more rights",
    "resource_exposure": "can change who may access resources (resource policies, ACLs, sharing)",
    "credentials_exposure": "can obtain or set credentials of other identities or resources",
    "data_exfiltration": "can read stored data (objects, items, parameters, secrets) anywhere",
    "service_wildcard": "grants every action of a service",
    "infrastructure_modification": "can change resources it could have been limited to",
}

#: The access level whose actions change who may access a resource.
RESOURCE_EXPOSURE_LEVEL = "Permissions management"

#: Write-level actions that share or publish a resource all the same.
RESOURCE_EXPOSURE_EXTRA = (
    "ec2:ModifyImageAttribute",  # launch permission for other accounts or everyone
    "ec2:ModifyFpgaImageAttribute",
    "rds:ModifyDBSnapshotAttribute",  # restore permission for other accounts or everyone
    "rds:ModifyDBClusterSnapshotAttribute",
    "ram:CreateResourceShare",
    "ram:AssociateResourceShare",
    "ram:UpdateResourceShare",
    "lambda:CreateFunctionUrlConfig",  # AuthType NONE makes a function public
    "lambda:UpdateFunctionUrlConfig",
    "es:UpdateDomainConfig",  # carries the domain's access policy
    "es:UpdateElasticsearchDomainConfig",
    "serverlessrepo:PutApplicationPolicy",
    "codeartifact:PutRepositoryPermissionsPolicy",
)

CREDENTIALS_EXPOSURE = (
    # credentials of other IAM users
    "iam:CreateAccessKey",
    "iam:UpdateAccessKey",  # reactivates a key
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:CreateServiceSpecificCredential",
    "iam:ResetServiceSpecificCredential",
    "iam:UploadSSHPublicKey",
    # temporary credentials of other roles and identities
    "sts:AssumeRole",
    "cognito-identity:GetCredentialsForIdentity",
    "cognito-identity:GetOpenIdTokenForDeveloperIdentity",
    "emr-containers:GetManagedEndpointSessionCredentials",
    # logins to instances and databases
    "ec2:GetPasswordData",
    "ec2-instance-connect:SendSSHPublicKey",
    "ec2-instance-connect:SendSerialConsoleSSHPublicKey",
    "rds-db:connect",
    "redshift:GetClusterCredentials",
    "redshift:GetClusterCredentialsWithIAM",
    "redshift-serverless:GetCredentials",
    "lightsail:DownloadDefaultKeyPair",
    "lightsail:GetInstanceAccessDetails",
    "lightsail:GetRelationalDatabaseMasterUserPassword",
    "lightsail:CreateBucketAccessKey",
    "gamelift:GetInstanceAccess",
    "gamelift:GetComputeAccess",
    "storagegateway:DescribeChapCredentials",
    # keys and tokens that stand for an identity or an endpoint
    "appsync:CreateApiKey",
    "chime:CreateApiKey",
    "grafana:CreateWorkspaceApiKey",
    "airflow:CreateCliToken",
    "airflow:CreateWebLoginToken",
    "cloud9:CreateEnvironmentToken",
    "connect:GetFederationToken",
    "mediapackage:RotateChannelCredentials",
    "mediapackage:RotateIngestEndpointCredentials",
    "iot:CreateKeysAndCertificate",
)

DATA_EXFILTRATION = (
    "s3:GetObject",
    "s3:GetObjectVersion",
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:GetParametersByPath",
    "ssm:GetParameterHistory",
    "secretsmanager:GetSecretValue",
    "secretsmanager:BatchGetSecretValue",
    "kms:Decrypt",
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "sqs:ReceiveMessage",
    "kinesis:GetRecords",
    "logs:GetLogEvents",
    "logs:FilterLogEvents",
)

#: Access levels of actions that change resources.
MODIFYING_LEVELS = ("Write", "Permissions management", "Tagging")


@dataclass(frozen=True)
class ActionRule:
    """Which actions make up a category: those named, and every action of the access levels
    except those whose name starts with one of `except_prefixes`; with `scopable_only`, only
    actions AWS lets a policy limit to named resources."""

    names: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    except_prefixes: tuple[str, ...] = ()
    scopable_only: bool = False


#: AWS files a few reads under Write or Permissions management (`billing:GetResourcePolicy`,
#: `iot:ListSubscriptions`); an action that only reads changes nothing and exposes nothing.
READ_PREFIXES = ("Get", "List", "Describe")


#: The categories decided action by action, in report order. privilege_escalation (combinations
#: of actions) and service_wildcard (whole services) are decided by the analysis itself.
RULES: dict[str, ActionRule] = {
    "resource_exposure": ActionRule(
        names=RESOURCE_EXPOSURE_EXTRA,
        levels=(RESOURCE_EXPOSURE_LEVEL,),
        except_prefixes=READ_PREFIXES,
    ),
    "credentials_exposure": ActionRule(names=CREDENTIALS_EXPOSURE),
    "data_exfiltration": ActionRule(names=DATA_EXFILTRATION),
    "infrastructure_modification": ActionRule(
        levels=MODIFYING_LEVELS, except_prefixes=READ_PREFIXES, scopable_only=True
    ),
}


@cache
def category_actions(category: str) -> frozenset[str]:
    """Every action (as the database spells it: `ecs:RunTask`) of a category in `RULES`.
    A named action the database does not know is skipped."""
    rule = RULES[category]
    named = (actions.lookup(name) for name in rule.names)
    by_level = (
        i
        for i in (actions.expand("*") if rule.levels else ())
        if i.access_level in rule.levels and not i.name.startswith(rule.except_prefixes)
    )
    return frozenset(
        info.action
        for info in (*named, *by_level)
        if info is not None and (info.resource_types or not rule.scopable_only)
    )
