"""ECR: image scanning, tag immutability, lifecycle policies and public repository policies."""

from __future__ import annotations

import re
from collections.abc import Iterator
from fnmatch import fnmatchcase
from typing import Any

from ecsguard.posture.check import Result, check
from ecsguard.posture.context import CheckContext, Resource

REPO = "AWS::ECR::Repository"
NEEDS_REPOS = ("ecr:DescribeRepositories",)
NEEDS_SCANNING = ("ecr:DescribeRepositories", "ecr:GetRegistryScanningConfiguration")
NEEDS_POLICY = ("ecr:DescribeRepositories", "ecr:GetRepositoryPolicy")

#: settings under which tags cannot be overwritten (IMMUTABLE_WITH_EXCLUSION: all but the
#: excluded tag filters); MUTABLE_WITH_EXCLUSION protects only the listed tags
IMMUTABLE = frozenset({"IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION"})
#: registry scanning frequencies that scan an image without anyone asking
AUTOMATIC_SCANS = frozenset({"SCAN_ON_PUSH", "CONTINUOUS_SCAN"})
#: actions that change what a repository serves: a public grant of any is a supply-chain hole
PUSH_ACTIONS = (
    "ecr:PutImage",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:BatchDeleteImage",
    "ecr:DeleteRepository",
    "ecr:SetRepositoryPolicy",
    "ecr:DeleteRepositoryPolicy",
    "ecr:PutLifecyclePolicy",
    "ecr:PutImageTagMutability",
)
#: condition keys that tie a `"*"` principal to an organisation, account, network or caller
RESTRICTING_KEYS = frozenset(
    k.lower()
    for k in (
        "aws:PrincipalOrgID",
        "aws:PrincipalOrgPaths",
        "aws:PrincipalAccount",
        "aws:PrincipalArn",
        "aws:SourceAccount",
        "aws:SourceArn",
        "aws:SourceOrgID",
        "aws:SourceOrgPaths",
        "aws:SourceVpc",
        "aws:SourceVpce",
    )
)


def _repositories(ctx: CheckContext) -> Iterator[tuple[str, Resource]]:
    for region, inv in ctx.regions():
        for repo in sorted(inv.ecr.repositories, key=lambda r: r.get("repositoryArn", "")):
            yield region, repo


def _wildcard(pattern: str, name: str) -> bool:
    """ECR repository filters: `*` matches any run of characters, nothing else is special."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, name) is not None


def _scanning_rules(scanning: Resource, name: str, frequencies: frozenset[str]) -> list[str]:
    """The scan frequencies of registry rules whose repository filter matches `name`."""
    return [
        rule.get("scanFrequency", "")
        for rule in scanning.get("rules", [])
        if rule.get("scanFrequency") in frequencies
        and any(_wildcard(f.get("filter", ""), name) for f in rule.get("repositoryFilters", []))
    ]


@check(
    id="ecr.repository_scan_on_push",
    severity="high",
    pillar="security",
    resource_type=REPO,
    controls=["FSBP:ECR.1"],
    needs=NEEDS_SCANNING,
    title={
        "en": "ECR repositories scan images on push",
        "ja": "ECR リポジトリはプッシュ時にイメージをスキャンする",
    },
    description={
        "en": "An image that is never scanned reaches production with whatever known "
        "vulnerabilities its base image and packages carry, and nobody is told.",
        "ja": "スキャンされないイメージは、ベースイメージやパッケージの既知の脆弱性を抱えたまま、"
        "誰にも知られずに本番環境へ届く。",
    },
    remediation={
        "en": "Add a registry scanning rule (scan on push or continuous, with a repository "
        "filter matching the repository) or turn on scanOnPush for the repository.",
        "ja": "リポジトリに一致するフィルターを持つレジストリのスキャンルール"
        "（プッシュ時または継続的）を追加するか、リポジトリの scanOnPush を有効にする。",
    },
    fail={
        "en": "repository {repository} does not scan on push and no registry scanning rule "
        "matches it (registry scan type {scan_type})",
        "ja": "リポジトリ {repository} はプッシュ時スキャンが無効で、"
        "一致するレジストリのスキャンルールもない（レジストリのスキャンタイプ {scan_type}）",
    },
    passed={
        "en": "repository {repository} is scanned ({how})",
        "ja": "リポジトリ {repository} はスキャンされる（{how}）",
    },
)
def repository_scan_on_push(ctx: CheckContext) -> Iterator[Result]:
    for region, repo in _repositories(ctx):
        scanning = ctx.snapshot.regions[region].ecr.registry_scanning
        name = repo["repositoryName"]
        how = [f"registry rule {f}" for f in _scanning_rules(scanning, name, AUTOMATIC_SCANS)]
        if repo.get("imageScanningConfiguration", {}).get("scanOnPush"):
            how.insert(0, "scanOnPush")
        params = {"repository": name, "how": ", ".join(how), "scan_type": _scan_type(scanning)}
        yield Result(repo["repositoryArn"], region, bool(how), params)


def _scan_type(scanning: Resource) -> str:
    return str(scanning.get("scanType") or "BASIC")


@check(
    id="ecr.registry_enhanced_scanning",
    severity="low",
    pillar="security",
    resource_type="AWS::ECR::RegistryScanningConfiguration",
    needs=NEEDS_SCANNING,
    title={
        "en": "The ECR registry uses enhanced scanning for every repository",
        "ja": "ECR レジストリはすべてのリポジトリに拡張スキャンを使っている",
    },
    description={
        "en": "Basic scanning checks operating-system packages once, when an image is pushed. "
        "Enhanced scanning (Amazon Inspector) also covers language packages and rescans "
        "images as new vulnerabilities are published, so long-running tasks are not "
        "judged by a months-old scan.",
        "ja": "ベーシックスキャンはプッシュ時に一度だけ OS パッケージを検査する。"
        "拡張スキャン（Amazon Inspector）は言語パッケージも対象にし、"
        "新しい脆弱性の公開に合わせて再スキャンするため、"
        "長く動くタスクが数か月前のスキャン結果のまま放置されない。",
    },
    remediation={
        "en": "Set the registry scanning configuration to ENHANCED with a CONTINUOUS_SCAN "
        "(or SCAN_ON_PUSH) rule whose filter is `*` or matches every repository.",
        "ja": "レジストリのスキャン設定を ENHANCED にし、フィルター `*`"
        "（またはすべてのリポジトリに一致するフィルター）の "
        "CONTINUOUS_SCAN（または SCAN_ON_PUSH）ルールを追加する。",
    },
    fail={
        "en": "registry in {region} uses {scan_type} scanning; not covered by an enhanced "
        "rule: {repositories}",
        "ja": "{region} のレジストリは {scan_type} スキャン。"
        "拡張スキャンのルールが及ばないリポジトリ: {repositories}",
    },
    passed={
        "en": "registry in {region} scans every repository with enhanced scanning",
        "ja": "{region} のレジストリはすべてのリポジトリを拡張スキャンしている",
    },
)
def registry_enhanced_scanning(ctx: CheckContext) -> Iterator[Result]:
    for region, inv in ctx.regions():
        if not inv.ecr.repositories:
            continue
        scanning = inv.ecr.registry_scanning
        enhanced = _scan_type(scanning) == "ENHANCED"
        uncovered = sorted(
            r["repositoryName"]
            for r in inv.ecr.repositories
            if not enhanced or not _scanning_rules(scanning, r["repositoryName"], AUTOMATIC_SCANS)
        )
        params = {
            "region": region,
            "scan_type": _scan_type(scanning),
            "repositories": ", ".join(uncovered),
        }
        arn = f"arn:aws:ecr:{region}:{ctx.account}:registry"
        yield Result(arn, region, not uncovered, params)


@check(
    id="ecr.repository_tag_immutability",
    severity="medium",
    pillar="security",
    resource_type=REPO,
    controls=["FSBP:ECR.2"],
    needs=NEEDS_REPOS,
    title={
        "en": "ECR repositories have immutable image tags",
        "ja": "ECR リポジトリのイメージタグはイミュータブル",
    },
    description={
        "en": "With mutable tags anyone who can push can silently replace the image behind "
        "`v1.2.3`; the next task launch runs the new image while the task definition still "
        "looks unchanged.",
        "ja": "タグがミュータブルだと、プッシュ権限を持つ者が `v1.2.3` の中身を"
        "黙って差し替えられる。タスク定義は変わらないまま、"
        "次に起動するタスクは新しいイメージを実行する。",
    },
    remediation={
        "en": "Set imageTagMutability to IMMUTABLE (or IMMUTABLE_WITH_EXCLUSION for a few "
        "moving tags such as `latest`), and deploy by digest or by unique tags.",
        "ja": "imageTagMutability を IMMUTABLE（`latest` など一部の可変タグが必要なら "
        "IMMUTABLE_WITH_EXCLUSION）にし、ダイジェストか一意なタグでデプロイする。",
    },
    fail={
        "en": "repository {repository} has tag mutability {mutability}{exclusions}",
        "ja": "リポジトリ {repository} のタグ設定は {mutability}{exclusions}",
    },
    passed={
        "en": "repository {repository} has tag mutability {mutability}{exclusions}",
        "ja": "リポジトリ {repository} のタグ設定は {mutability}{exclusions}",
    },
)
def repository_tag_immutability(ctx: CheckContext) -> Iterator[Result]:
    for region, repo in _repositories(ctx):
        mutability = repo.get("imageTagMutability") or "MUTABLE"
        filters = [f.get("filter", "") for f in repo.get("imageTagMutabilityExclusionFilters", [])]
        params = {
            "repository": repo["repositoryName"],
            "mutability": mutability,
            "exclusions": f" (exclusions: {', '.join(filters)})" if filters else "",
        }
        yield Result(repo["repositoryArn"], region, mutability in IMMUTABLE, params)


@check(
    id="ecr.repository_lifecycle_policy",
    severity="low",
    pillar="security",
    resource_type=REPO,
    controls=["FSBP:ECR.3"],
    needs=(*NEEDS_REPOS, "ecr:GetLifecyclePolicy"),
    title={
        "en": "ECR repositories have a lifecycle policy",
        "ja": "ECR リポジトリにライフサイクルポリシーがある",
    },
    description={
        "en": "Without a lifecycle policy old images pile up: storage cost grows, and stale "
        "images with known vulnerabilities stay available to be run.",
        "ja": "ライフサイクルポリシーがないと古いイメージが溜まり続け、ストレージ費用が増え、"
        "既知の脆弱性を持つ古いイメージが実行可能なまま残る。",
    },
    remediation={
        "en": "Add a lifecycle policy that expires untagged images and keeps only the "
        "most recent tagged images you may roll back to.",
        "ja": "タグなしイメージを期限切れにし、"
        "ロールバックに必要な直近のタグ付きイメージだけを残すライフサイクルポリシーを追加する。",
    },
    fail={
        "en": "repository {repository} has no lifecycle policy",
        "ja": "リポジトリ {repository} にライフサイクルポリシーがない",
    },
    passed={
        "en": "repository {repository} has a lifecycle policy ({rules} rules)",
        "ja": "リポジトリ {repository} にライフサイクルポリシーがある（ルール {rules} 件）",
    },
)
def repository_lifecycle_policy(ctx: CheckContext) -> Iterator[Result]:
    for region, repo in _repositories(ctx):
        policy = repo.get("lifecyclePolicy")
        rules = len(policy.get("rules", [])) if isinstance(policy, dict) else 0
        params = {"repository": repo["repositoryName"], "rules": rules}
        yield Result(repo["repositoryArn"], region, bool(policy), params)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _everyone(statement: Resource) -> bool:
    if "NotPrincipal" in statement:
        return True
    principal = statement.get("Principal")
    if principal == "*":
        return True
    return isinstance(principal, dict) and "*" in _as_list(principal.get("AWS"))


def _restricted(statement: Resource) -> bool:
    """A condition that pins the caller to an organisation, account, caller ARN or network."""
    for operator, clauses in (statement.get("Condition") or {}).items():
        if "not" in operator.lower() or not isinstance(clauses, dict):
            continue
        for key, values in clauses.items():
            if key.lower() in RESTRICTING_KEYS and any(v != "*" for v in _as_list(values)):
                return True
    return False


def _public_statements(policy: Resource | None) -> list[tuple[str, list[str], bool]]:
    """(label, actions, allows push) for each Allow statement open to anyone."""
    found = []
    for index, stmt in enumerate(_as_list((policy or {}).get("Statement"))):
        if stmt.get("Effect") != "Allow" or not _everyone(stmt) or _restricted(stmt):
            continue
        if "NotAction" in stmt:
            excluded = [a.lower() for a in _as_list(stmt["NotAction"])]
            actions = ["NotAction " + ", ".join(_as_list(stmt["NotAction"]))]
            push = any(not any(fnmatchcase(p.lower(), x) for x in excluded) for p in PUSH_ACTIONS)
        else:
            actions = [str(a) for a in _as_list(stmt.get("Action"))]
            push = any(fnmatchcase(p.lower(), a.lower()) for p in PUSH_ACTIONS for a in actions)
        label = f"Sid {stmt['Sid']}" if stmt.get("Sid") else f"statement #{index}"
        found.append((label, actions, push))
    return found


def _describe(statements: list[tuple[str, list[str], bool]]) -> str:
    return "; ".join(f"{label}: {', '.join(actions)}" for label, actions, _ in statements)


_POLICY_REMEDIATION = {
    "en": 'Name the accounts or roles in Principal, or keep `"*"` only with a condition on '
    "aws:PrincipalOrgID, aws:PrincipalAccount or aws:SourceAccount. Use ECR Public for images "
    "meant for everyone.",
    "ja": 'Principal にアカウントやロールを明示するか、`"*"` を使う場合は aws:PrincipalOrgID、'
    "aws:PrincipalAccount、aws:SourceAccount の条件を付ける。誰にでも公開するイメージは ECR Public "
    "を使う。",
}


@check(
    id="ecr.repository_policy_public_push",
    severity="critical",
    pillar="security",
    resource_type=REPO,
    needs=NEEDS_POLICY,
    title={
        "en": "ECR repository policies do not let anyone push",
        "ja": "ECR リポジトリポリシーは誰にでもプッシュを許可していない",
    },
    description={
        "en": "A statement that allows push or delete actions to every AWS principal lets any "
        "AWS account replace the images your tasks run: a direct supply-chain compromise.",
        "ja": "プッシュや削除のアクションをすべての AWS プリンシパルに許可する"
        "ステートメントがあると、任意の AWS アカウントがタスクの実行するイメージを"
        "差し替えられる。サプライチェーンへの直接の侵害となる。",
    },
    remediation=_POLICY_REMEDIATION,
    fail={
        "en": "repository {repository} lets anyone push: {statements}",
        "ja": "リポジトリ {repository} は誰にでもプッシュを許可している: {statements}",
    },
    passed={
        "en": "repository {repository} does not let anyone push",
        "ja": "リポジトリ {repository} は誰にでもプッシュを許可していない",
    },
)
def repository_policy_public_push(ctx: CheckContext) -> Iterator[Result]:
    for region, repo in _repositories(ctx):
        push = [s for s in _public_statements(repo.get("policy")) if s[2]]
        params = {"repository": repo["repositoryName"], "statements": _describe(push)}
        yield Result(repo["repositoryArn"], region, not push, params)


@check(
    id="ecr.repository_policy_public_pull",
    severity="high",
    pillar="security",
    resource_type=REPO,
    needs=NEEDS_POLICY,
    title={
        "en": "ECR repository policies do not let anyone pull",
        "ja": "ECR リポジトリポリシーは誰にでもプルを許可していない",
    },
    description={
        "en": "A statement open to every AWS principal lets any AWS account pull your images, "
        "with the code, configuration and any secrets baked into their layers. (A repository "
        "anyone can also push to is reported by ecr.repository_policy_public_push instead.)",
        "ja": "すべての AWS プリンシパルに開いたステートメントがあると、任意の AWS "
        "アカウントがイメージを取得でき、レイヤーに含まれるコード、設定、"
        "埋め込まれたシークレットが漏れる。（誰でもプッシュできるリポジトリは "
        "ecr.repository_policy_public_push で報告する。）",
    },
    remediation=_POLICY_REMEDIATION,
    fail={
        "en": "repository {repository} is readable by anyone: {statements}",
        "ja": "リポジトリ {repository} は誰でも読み取れる: {statements}",
    },
    passed={
        "en": "repository {repository} is not open to anyone",
        "ja": "リポジトリ {repository} は誰にでも開かれてはいない",
    },
)
def repository_policy_public_pull(ctx: CheckContext) -> Iterator[Result]:
    for region, repo in _repositories(ctx):
        public = _public_statements(repo.get("policy"))
        if any(push for _, _, push in public):
            continue  # reported, at a higher severity, by ecr.repository_policy_public_push
        params = {"repository": repo["repositoryName"], "statements": _describe(public)}
        yield Result(repo["repositoryArn"], region, not public, params)
