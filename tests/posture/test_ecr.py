"""ECR checks: scanning, tag immutability, lifecycle policies, public repository policies."""

from __future__ import annotations

from typing import Any

import pytest
from tests.posture.builders import ACCOUNT, REGION, findings, snapshot

from ecsguard.aws.snapshot import Gap
from ecsguard.core.models import Finding, Status


def repo(name: str = "web", **fields: Any) -> dict[str, Any]:
    """A well-configured repository; pass fields to override."""
    return {
        "repositoryArn": f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{name}",
        "repositoryName": name,
        "registryId": ACCOUNT,
        "imageScanningConfiguration": {"scanOnPush": True},
        "imageTagMutability": "IMMUTABLE",
        "policy": None,
        "lifecyclePolicy": {"rules": [{"rulePriority": 1}]},
        **fields,
    }


def by_repo(
    check_id: str, *repos: dict[str, Any], lang: str = "en", **ecr: Any
) -> dict[str, Finding]:
    snap = snapshot(ecr={"repositories": list(repos), **ecr})
    return {f.resource_arn.rsplit("/", 1)[-1]: f for f in findings(snap, check_id, lang)}


def only(check_id: str, *repos: dict[str, Any], lang: str = "en", **ecr: Any) -> Finding:
    [finding] = by_repo(check_id, *repos, lang=lang, **ecr).values()
    return finding


def rule(frequency: str, *filters: str) -> dict[str, Any]:
    return {
        "scanFrequency": frequency,
        "repositoryFilters": [{"filter": f, "filterType": "WILDCARD"} for f in filters],
    }


def test_every_ecr_check_is_empty_without_repositories() -> None:
    for check_id in (
        "ecr.repository_scan_on_push",
        "ecr.registry_enhanced_scanning",
        "ecr.repository_tag_immutability",
        "ecr.repository_lifecycle_policy",
        "ecr.repository_policy_public_push",
        "ecr.repository_policy_public_pull",
    ):
        assert findings(snapshot(), check_id) == [], check_id


# --- scan on push ----------------------------------------------------------------------------

SCAN = "ecr.repository_scan_on_push"
OFF = {"imageScanningConfiguration": {"scanOnPush": False}}


def test_scan_on_push_passes_on_the_repository_setting() -> None:
    finding = only(SCAN, repo())
    assert finding.status == Status.PASS
    assert finding.message == "repository web is scanned (scanOnPush)"
    assert finding.controls == ["FSBP:ECR.1"]


def test_scan_on_push_fails_without_setting_or_matching_rule() -> None:
    scanning = {"scanType": "BASIC", "rules": [rule("SCAN_ON_PUSH", "api-*")]}
    finding = only(SCAN, repo("web", **OFF), registry_scanning=scanning)
    assert finding.status == Status.FAIL
    assert finding.message == (
        "repository web does not scan on push and no registry scanning rule matches it "
        "(registry scan type BASIC)"
    )


@pytest.mark.parametrize(
    ("frequency", "pattern", "passes"),
    [
        ("SCAN_ON_PUSH", "*", True),
        ("CONTINUOUS_SCAN", "team/*", True),
        ("SCAN_ON_PUSH", "team/w*b", True),
        ("SCAN_ON_PUSH", "team/web", True),
        ("MANUAL", "*", False),
        ("SCAN_ON_PUSH", "team", False),
        ("SCAN_ON_PUSH", "team.web", False),  # `.` is literal, not a regex wildcard
    ],
)
def test_registry_rules_match_repositories_by_wildcard(
    frequency: str, pattern: str, passes: bool
) -> None:
    scanning = {"scanType": "ENHANCED", "rules": [rule(frequency, pattern)]}
    finding = only(SCAN, repo("team/web", **OFF), registry_scanning=scanning)
    assert (finding.status == Status.PASS) is passes
    if passes:
        assert f"registry rule {frequency}" in finding.message


def test_scan_on_push_in_japanese() -> None:
    finding = only(SCAN, repo("web", **OFF), lang="ja")
    assert finding.message.startswith("リポジトリ web はプッシュ時スキャンが無効")
    assert "BASIC" in finding.message


def test_scan_gap_makes_the_region_not_assessed() -> None:
    snap = snapshot(ecr={"repositories": [repo()]})
    snap.gaps.append(
        Gap(service="ecr", action="GetRegistryScanningConfiguration", region=REGION,
            error_code="AccessDeniedException")
    )  # fmt: skip
    assert [f.status for f in findings(snap, SCAN)] == [Status.NOT_ASSESSED]


# --- enhanced scanning -------------------------------------------------------------------------

ENHANCED = "ecr.registry_enhanced_scanning"


def test_enhanced_scanning_passes_when_every_repository_is_covered() -> None:
    scanning = {"scanType": "ENHANCED", "rules": [rule("CONTINUOUS_SCAN", "*")]}
    finding = only(ENHANCED, repo("web"), repo("api"), registry_scanning=scanning)
    assert finding.status == Status.PASS
    assert finding.resource_arn == f"arn:aws:ecr:{REGION}:{ACCOUNT}:registry"
    assert finding.region == REGION


def test_enhanced_scanning_fails_on_basic_naming_every_repository() -> None:
    finding = only(ENHANCED, repo("web"), repo("api"))
    assert finding.status == Status.FAIL
    assert finding.message == (
        f"registry in {REGION} uses BASIC scanning; not covered by an enhanced rule: api, web"
    )


def test_enhanced_scanning_names_repositories_no_rule_covers() -> None:
    scanning = {"scanType": "ENHANCED", "rules": [rule("SCAN_ON_PUSH", "web")]}
    finding = only(ENHANCED, repo("web"), repo("api"), registry_scanning=scanning)
    assert finding.status == Status.FAIL
    assert finding.message.endswith("uses ENHANCED scanning; not covered by an enhanced rule: api")


# --- tag immutability ---------------------------------------------------------------------------

TAGS = "ecr.repository_tag_immutability"


@pytest.mark.parametrize(
    ("mutability", "passes"),
    [
        ("IMMUTABLE", True),
        ("IMMUTABLE_WITH_EXCLUSION", True),
        ("MUTABLE", False),
        ("MUTABLE_WITH_EXCLUSION", False),
        (None, False),
    ],
)
def test_tag_immutability_settings(mutability: str | None, passes: bool) -> None:
    finding = only(TAGS, repo("web", imageTagMutability=mutability))
    assert (finding.status == Status.PASS) is passes
    assert finding.message == f"repository web has tag mutability {mutability or 'MUTABLE'}"
    assert finding.controls == ["FSBP:ECR.2"]


def test_tag_immutability_shows_the_exclusions() -> None:
    filters = [{"filter": "latest", "filterType": "WILDCARD"}]
    fields = {"imageTagMutability": "MUTABLE_WITH_EXCLUSION"}
    finding = only(TAGS, repo("web", imageTagMutabilityExclusionFilters=filters, **fields))
    assert finding.status == Status.FAIL
    assert finding.message.endswith("MUTABLE_WITH_EXCLUSION (exclusions: latest)")


# --- lifecycle policy -----------------------------------------------------------------------------

LIFECYCLE = "ecr.repository_lifecycle_policy"


def test_lifecycle_policy_pass_and_fail() -> None:
    result = by_repo(LIFECYCLE, repo("web"), repo("old", lifecyclePolicy=None))
    assert result["web"].status == Status.PASS
    assert result["web"].message == "repository web has a lifecycle policy (1 rules)"
    assert result["old"].status == Status.FAIL
    assert result["old"].message == "repository old has no lifecycle policy"
    assert result["old"].controls == ["FSBP:ECR.3"]


# --- public repository policies ------------------------------------------------------------

PUSH = "ecr.repository_policy_public_push"
PULL = "ecr.repository_policy_public_pull"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(principal: Any, actions: Any, sid: str | None = None, **more: Any) -> dict[str, Any]:
    stmt: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": actions, **more}
    if sid:
        stmt["Sid"] = sid
    return stmt


PULL_ACTIONS = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]


def test_public_push_is_critical_and_quotes_the_statement() -> None:
    stmt = allow("*", ["ecr:PutImage", "ecr:BatchGetImage"], sid="CI")
    finding = only(PUSH, repo("web", policy=policy(stmt)))
    assert finding.status == Status.FAIL
    assert finding.severity == "critical"
    assert (
        finding.message
        == "repository web lets anyone push: Sid CI: ecr:PutImage, ecr:BatchGetImage"
    )
    # the same repository is not reported again as merely readable
    assert by_repo(PULL, repo("web", policy=policy(stmt))) == {}


@pytest.mark.parametrize("actions", ["ecr:*", "*", ["ecr:Put*"], "ECR:UploadLayerPart"])
def test_public_push_sees_wildcards_and_case(actions: Any) -> None:
    finding = only(PUSH, repo("web", policy=policy(allow({"AWS": "*"}, actions))))
    assert finding.status == Status.FAIL
    assert "statement #0" in finding.message


def test_not_action_that_leaves_push_open_is_public_push() -> None:
    stmt = {"Effect": "Allow", "Principal": "*", "NotAction": "ecr:DeleteRepository"}
    finding = only(PUSH, repo("web", policy=policy(stmt)))
    assert finding.status == Status.FAIL
    assert "NotAction ecr:DeleteRepository" in finding.message


def test_public_pull_is_high_and_quotes_the_statement() -> None:
    stmt = allow({"AWS": ["arn:aws:iam::111122223333:root", "*"]}, PULL_ACTIONS)
    result = by_repo(PULL, repo("web", policy=policy(allow("*", "ecr:ListImages"), stmt)))
    finding = result["web"]
    assert finding.status == Status.FAIL
    assert finding.severity == "high"
    assert finding.message == (
        "repository web is readable by anyone: statement #0: ecr:ListImages; "
        "statement #1: ecr:BatchGetImage, ecr:GetDownloadUrlForLayer"
    )
    assert only(PUSH, repo("web", policy=policy(stmt))).status == Status.PASS


@pytest.mark.parametrize(
    "stmt",
    [
        allow({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "ecr:*"),
        allow({"Service": "lambda.amazonaws.com"}, PULL_ACTIONS),
        {"Effect": "Deny", "Principal": "*", "Action": "ecr:*"},
        allow("*", "ecr:*", Condition={"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}),
        allow("*", "ecr:*", Condition={"StringEquals": {"AWS:SourceAccount": ACCOUNT}}),
        allow("*", PULL_ACTIONS, Condition={"StringLike": {"aws:PrincipalOrgPaths": "o-a/r-b/*"}}),
    ],
)  # fmt: skip
def test_named_or_conditioned_principals_are_not_public(stmt: dict[str, Any]) -> None:
    repository = repo("web", policy=policy(stmt))
    assert only(PUSH, repository).status == Status.PASS
    assert only(PULL, repository).status == Status.PASS


@pytest.mark.parametrize(
    "condition",
    [
        {"StringNotEquals": {"aws:PrincipalOrgID": "o-abc123"}},
        {"StringEquals": {"aws:PrincipalOrgID": "*"}},
        {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
    ],
)
def test_conditions_that_do_not_pin_the_caller_stay_public(condition: dict[str, Any]) -> None:
    stmt = allow("*", PULL_ACTIONS, Condition=condition)
    assert only(PULL, repo("web", policy=policy(stmt))).status == Status.FAIL


def test_no_policy_passes_both_public_checks() -> None:
    assert only(PUSH, repo()).message == "repository web does not let anyone push"
    assert only(PULL, repo()).status == Status.PASS


def test_public_pull_in_japanese() -> None:
    finding = only(
        PULL, repo("web", policy=policy(allow("*", "ecr:BatchGetImage", sid="Open"))), lang="ja"
    )
    assert finding.message == "リポジトリ web は誰でも読み取れる: Sid Open: ecr:BatchGetImage"
