"""Every ACTIVE account of an AWS Organization, one Snapshot each, through a role assumed in it.

The caller runs in the management account (or a delegated administrator): it lists the accounts
(organizations:ListAccounts), then, on a bounded thread pool, assumes
`arn:<partition>:iam::<account>:role/<role name>` in each (with the ExternalId when given) and runs
the ordinary collectors there. An account whose role cannot be assumed, or whose collection fails
for a reason outside ecsguard, becomes a result with that reason; the others go on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import botocore.exceptions as bce

from ecsguard.aws.collect import collect
from ecsguard.aws.session import AwsOptions, AwsSession
from ecsguard.aws.snapshot import Snapshot
from ecsguard.core.errors import AwsAccessError, UserError


@dataclass(frozen=True)
class Account:
    id: str
    name: str = ""
    email: str = ""


@dataclass(frozen=True)
class AccountResult:
    account: Account
    snapshot: Snapshot | None = None
    #: why the account was not collected (None: it was)
    error: str | None = None


def not_collected(result: AccountResult) -> str:
    """How a result that holds no snapshot is reported: "account ID (NAME): not collected: WHY"."""
    return f"account {result.account.id} ({result.account.name}): not collected: {result.error}"


def require_collected(results: Sequence[AccountResult]) -> None:
    """AwsAccessError, with the first reasons, when no account at all was collected."""
    if any(result.snapshot is not None for result in results):
        return
    reasons = [not_collected(result) for result in results]
    raise AwsAccessError(
        "no account of the organization could be collected",
        "; ".join(reasons[:3]) + (" ..." if len(reasons) > 3 else ""),
    )


def list_accounts(session: AwsSession) -> list[Account]:
    """The organization's ACTIVE accounts, sorted by id."""
    client = session.client("organizations")
    accounts: list[Account] = []
    try:
        for page in client.get_paginator("list_accounts").paginate():
            for item in page.get("Accounts", []):
                # `State` replaces `Status` in newer API versions; either says ACTIVE
                if (item.get("State") or item.get("Status")) == "ACTIVE":
                    accounts.append(
                        Account(item["Id"], item.get("Name", ""), item.get("Email", ""))
                    )
    except bce.ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if code == "AWSOrganizationsNotInUseException":
            raise UserError(
                "this account is not in an AWS Organization",
                "run --org from the management account, or audit one account without --org",
            ) from None
        raise AwsAccessError(
            f"cannot list the organization's accounts: {code}",
            "run from the management account or a delegated administrator with "
            "organizations:ListAccounts",
        ) from None
    except bce.BotoCoreError as err:
        raise AwsAccessError(f"cannot reach AWS Organizations: {err}") from None
    return sorted(accounts, key=lambda account: account.id)


def role_arn(caller_arn: str, account: str, role_name: str) -> str:
    """The role's ARN in `account`, in the caller's partition (aws, aws-cn, aws-us-gov)."""
    partition = caller_arn.split(":")[1] if caller_arn.startswith("arn:") else "aws"
    return f"arn:{partition}:iam::{account}:role/{role_name}"


def collect_account(
    options: AwsOptions, account: Account, role: str, external_id: str | None
) -> AccountResult:
    try:
        session = AwsSession(replace(options, role_arn=role, external_id=external_id))
        return AccountResult(account, snapshot=collect(session, session.resolve_regions()))
    except UserError as err:  # refused role, no access: this account only
        return AccountResult(account, error=err.problem)


def collect_organization(
    options: AwsOptions,
    role_name: str,
    *,
    external_id: str | None = None,
    max_concurrency: int = 4,
    done: Callable[[AccountResult], None] = lambda result: None,
) -> list[AccountResult]:
    """One result per ACTIVE account, in account order; `done` is called as each finishes."""
    if options.role_arn:
        raise UserError(
            "--org and --role-arn do not go together",
            "run --org with the management account's credentials; --role-name names the role "
            "assumed in every account",
        )
    management = AwsSession(options)
    caller = management.identity()["arn"]
    accounts = list_accounts(management)
    if not accounts:
        raise UserError("the organization has no ACTIVE account", "check the organization")

    def one(account: Account) -> AccountResult:
        result = collect_account(
            options, account, role_arn(caller, account.id, role_name), external_id
        )
        done(result)
        return result

    with ThreadPoolExecutor(max_concurrency, thread_name_prefix="ecsguard-org") as pool:
        return list(pool.map(one, accounts))
