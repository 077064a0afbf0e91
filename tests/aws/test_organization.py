"""`audit --org` on a moto server of its own: an organization with member accounts, a role assumed
in each (moto routes the assumed credentials to that account), one snapshot per account, one
combined report; an account whose role is refused is reported and the others go on."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import boto3
import pytest
from click.testing import CliRunner
from tests.aws.faults import refuse
from tests.cli.test_errors import ecsguard

from ecsguard.aws import organization
from ecsguard.aws import snapshot as snapshots
from ecsguard.aws.organization import Account, collect_organization, list_accounts, role_arn
from ecsguard.aws.session import AwsOptions, AwsSession
from ecsguard.cli.main import cli
from ecsguard.core.errors import AwsAccessError, UserError
from ecsguard.demo.emulator import ACCOUNT_ID, REGION, MotoServer
from ecsguard.posture.organization import audit_organization
from ecsguard.report.base import render

ROLE = "ecsguard-audit"


@pytest.fixture(scope="module")
def org() -> Iterator[tuple[MotoServer, list[str]]]:
    """A fresh server: the management account, two active members (one with an ECS cluster)
    and one closed member."""
    with MotoServer() as server:
        orgs = _client(server, "organizations")
        orgs.create_organization(FeatureSet="ALL")
        members = []
        for name in ("prod", "dev", "gone"):
            status = orgs.create_account(Email=f"{name}@example.com", AccountName=name)
            members.append(status["CreateAccountStatus"]["AccountId"])
        orgs.close_account(AccountId=members[2])
        creds = _client(server, "sts").assume_role(
            RoleArn=f"arn:aws:iam::{members[0]}:role/{ROLE}", RoleSessionName="seed"
        )["Credentials"]
        boto3.client(
            "ecs",
            region_name=REGION,
            endpoint_url=server.endpoint,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        ).create_cluster(clusterName="prod-cluster")
        yield server, members


def _client(server: MotoServer, service: str) -> Any:
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=server.endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def org_flags(server: MotoServer) -> tuple[str, ...]:
    return ("--org", "--role-name", ROLE, "--region", REGION, "--endpoint-url", server.endpoint)


def options(server: MotoServer) -> AwsOptions:
    return AwsOptions(regions=(REGION,), endpoint_url=server.endpoint)


@pytest.fixture
def env(org: tuple[MotoServer, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in org[0].env().items():
        monkeypatch.setenv(name, value)


def test_role_arn_follows_the_partition() -> None:
    assert role_arn("arn:aws-cn:iam::1:user/x", "222", "R") == "arn:aws-cn:iam::222:role/R"
    assert role_arn("arn:aws:sts::1:assumed-role/a/b", "3", "R") == "arn:aws:iam::3:role/R"


def test_lists_active_accounts_only(org: tuple[MotoServer, list[str]], env: None) -> None:
    server, members = org
    found = list_accounts(AwsSession(options(server)))
    assert [a.id for a in found] == sorted([ACCOUNT_ID, members[0], members[1]])
    assert {a.name for a in found} >= {"prod", "dev"}


class RefusingSession(AwsSession):
    """Refuses AssumeRole into one account at botocore's before-call hook, as an IAM deny or a
    trust policy that does not name us would."""

    refused = ""

    def _assume(self, base: Any) -> Any:
        def deny(params: dict[str, Any], **_: Any) -> Any:
            if f"::{self.refused}:" not in str(params.get("body", "")):
                return None
            return _Http(), {
                "Error": {"Code": "AccessDenied", "Message": "not authorized to assume"},
                "ResponseMetadata": {"HTTPStatusCode": 403},
            }

        base.events.register("before-call.sts.AssumeRole", deny)
        return super()._assume(base)


class _Http:
    status_code = 403
    headers: ClassVar[dict[str, str]] = {}
    content = b""


def test_one_snapshot_per_account_and_a_combined_report(
    org: tuple[MotoServer, list[str]], env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, members = org
    RefusingSession.refused = members[1]
    monkeypatch.setattr(organization, "AwsSession", RefusingSession)
    finished: list[str] = []
    results = collect_organization(
        options(server), ROLE, max_concurrency=2, done=lambda r: finished.append(r.account.id)
    )
    by_id = {r.account.id: r for r in results}
    assert sorted(finished) == sorted(by_id)
    prod, dev, management = by_id[members[0]], by_id[members[1]], by_id[ACCOUNT_ID]
    assert prod.snapshot is not None and management.snapshot is not None
    assert prod.snapshot.account == members[0]  # collected inside the member account
    assert management.snapshot.account == ACCOUNT_ID
    clusters = prod.snapshot.regions[REGION].ecs.clusters
    assert [c["clusterName"] for c in clusters] == ["prod-cluster"]
    assert management.snapshot.regions[REGION].ecs.clusters == []
    assert dev.snapshot is None and dev.error and "AccessDenied" in dev.error

    report, summaries = audit_organization(results)
    assert {f.account for f in report.findings} == {members[0], ACCOUNT_ID}
    assert any(
        f.account == members[0] and "prod-cluster" in f.resource_arn for f in report.findings
    )
    assert any(f"account {members[1]} (dev): not collected" in gap for gap in report.gaps)
    summary = {s.account: s for s in summaries}
    assert summary[members[1]].collected is False and "AccessDenied" in summary[members[1]].reason
    assert summary[members[0]].resources >= 1
    rows = list(csv.DictReader(io.StringIO(render(report, "csv").decode())))
    assert {row["account"] for row in rows} == {members[0], ACCOUNT_ID}


def test_no_account_collected_is_an_error(
    org: tuple[MotoServer, list[str]], env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, _ = org
    results = [organization.AccountResult(Account("111122223333", "x"), error="refused")]
    with pytest.raises(AwsAccessError):
        audit_organization(results)
    with pytest.raises(UserError):
        collect_organization(
            AwsOptions(regions=(REGION,), endpoint_url=server.endpoint, role_arn="arn:x"), ROLE
        )


def test_not_in_an_organization(aws_env: MotoServer) -> None:
    """AWS answers AWSOrganizationsNotInUseException (injected: moto lists no accounts instead,
    which the session's shared server shows)."""
    session = AwsSession(AwsOptions(regions=(REGION,), endpoint_url=aws_env.endpoint))
    assert list_accounts(session) == []
    with pytest.raises(UserError, match="no ACTIVE account"):
        collect_organization(AwsOptions(regions=(REGION,), endpoint_url=aws_env.endpoint), ROLE)
    refused = AwsSession(AwsOptions(regions=(REGION,), endpoint_url=aws_env.endpoint))
    refuse(refused, "organizations", "ListAccounts", "AWSOrganizationsNotInUseException")
    with pytest.raises(UserError) as err:
        list_accounts(refused)
    assert "not in an AWS Organization" in err.value.problem
    denied = AwsSession(AwsOptions(regions=(REGION,), endpoint_url=aws_env.endpoint))
    refuse(denied, "organizations", "ListAccounts", "AccessDeniedException")
    with pytest.raises(AwsAccessError, match="AccessDeniedException"):
        list_accounts(denied)


def test_cli_audit_org(org: tuple[MotoServer, list[str]], tmp_path: Path) -> None:
    server, members = org
    out = tmp_path / "org.csv"
    run = ecsguard(
        "audit",
        *org_flags(server),
        "--data-dir",
        str(tmp_path / "data"),
        "--output",
        "csv",
        "-o",
        str(out),
        "--fail-on",
        "critical",
    )
    assert "Traceback" not in run.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert {row["account"] for row in rows} == {ACCOUNT_ID, members[0], members[1]}
    snapshots = sorted(p.name.split("-")[0] for p in (tmp_path / "data" / "snapshots").iterdir())
    assert snapshots == sorted([ACCOUNT_ID, members[0], members[1]])
    assert "Accounts (failed checks by severity)" in run.stdout + run.stderr
    critical = [r for r in rows if r["status"] == "FAIL" and r["severity"] == "critical"]
    assert run.returncode == (1 if critical else 0)

    missing = ecsguard("audit", "--org", "--endpoint-url", server.endpoint, "--region", REGION)
    assert missing.returncode == 2 and "--org needs --role-name" in missing.stderr
    both = ecsguard("audit", *org_flags(server), "--snapshot", str(out))
    assert both.returncode == 2 and "--org does not go with --snapshot" in both.stderr


def test_cli_inventory_org(org: tuple[MotoServer, list[str]], tmp_path: Path) -> None:
    server, members = org
    folder = tmp_path / "snaps"
    run = ecsguard(
        "inventory",
        *org_flags(server),
        "-o",
        str(folder),
        "--output",
        "json",
    )
    assert run.returncode == 0, run.stderr
    accounts = {a["account"]: a for a in json.loads(run.stdout)}
    assert sorted(accounts) == sorted([ACCOUNT_ID, members[0], members[1]])
    assert all(a["collected"] for a in accounts.values())
    prod = accounts[members[0]]
    assert prod["name"] == "prod" and prod["resources"]["ecs.clusters"] == 1
    for account_id, entry in accounts.items():
        path = Path(entry["snapshot"])
        assert path.parent == folder and path.name.startswith(f"{account_id}-")
        assert snapshots.load(path).account == account_id
        assert f"account {account_id} (" in run.stderr  # one line per account as it finishes

    shown = ecsguard("inventory", *org_flags(server), "--data-dir", str(tmp_path / "data"))
    assert shown.returncode == 0 and "Accounts" in shown.stdout and "collected" in shown.stdout
    saved = sorted(p.name.split("-")[0] for p in (tmp_path / "data" / "snapshots").iterdir())
    assert saved == sorted(accounts)

    for refused, expected in (
        (("--org", "--role-name", ROLE, "-o", "-"), "--org does not go with -o -"),
        (("--role-name", ROLE), "--role-name goes with --org"),
        (("--org",), "--org needs --role-name"),
    ):
        wrong = ecsguard("inventory", *refused, "--endpoint-url", server.endpoint)
        assert wrong.returncode == 2 and expected in wrong.stderr, wrong.stderr
        assert "Traceback" not in wrong.stderr


def test_inventory_org_reports_refused_accounts(
    org: tuple[MotoServer, list[str]], env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """In process, as the refusal is injected: the refused account is a row with its reason
    and the others are saved; with every account refused, the command fails clearly."""
    server, members = org
    RefusingSession.refused = members[1]
    monkeypatch.setattr(organization, "AwsSession", RefusingSession)
    args = ["inventory", *org_flags(server), "-o", str(tmp_path)]
    table = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert table.exit_code == 0, table.output
    assert "not collected: cannot assume role" in table.output and "AccessDenied" in table.output
    assert "Accounts" in table.stdout and members[1] in table.stdout  # its reason folds
    assert len(list(tmp_path.glob("*.json.gz"))) == 2

    listed = CliRunner().invoke(cli, [*args, "--output", "json"], catch_exceptions=False)
    dev = next(a for a in json.loads(listed.stdout) if a["account"] == members[1])
    assert dev["collected"] is False and "AccessDenied" in dev["reason"]

    def refuse_all(options: AwsOptions, account: Account, role: str, external_id: Any) -> Any:
        return organization.AccountResult(account, error="AccessDenied: refused")

    monkeypatch.setattr(organization, "collect_account", refuse_all)
    with pytest.raises(AwsAccessError, match="no account of the organization"):
        CliRunner().invoke(cli, args, catch_exceptions=False, standalone_mode=False)
