"""Stray identities: IAM users and roles that nothing in the estate accounts for, and long-lived
credentials that found their way into workloads.

`stray_identities(snapshot, identity_map)` gives each stray user or role its reasons (a `Reason`
has a code and an English and a Japanese text). The rules, all counted to `now` (the snapshot's
`collected_at` unless given, never the wall clock):

- `long_lived_key_in_workload`: a user's access key id sits in a container environment of an
  in-scope task definition (see `ecsguard.iam.usage`), or CloudTrail shows the key called from a
  container (an AWS SDK user agent with `exec-env/AWS_ECS_FARGATE` or `AWS_ECS_EC2`) or from a
  private (RFC 1918) address, when CloudTrail records are given (`cloudtrail_uses`). A workload
  should run under its task role, whose credentials expire on their own.
- `key_older_than_90_days`: an active access key created more than 90 days ago (CIS 1.14).
- `key_unused_90_days`: an active access key not used for 90 days or more; a key never used
  counts from its creation.
- `ecs_task_role_unused`: a role that trusts ecs-tasks.amazonaws.com, which no in-scope task
  definition names as task or execution role (the evidence lists older revisions that still do).
- `task_role_shared`: a task role used by task definitions of unrelated families. Two families are
  *related* when, once environment words are dropped (`ENVIRONMENT_WORDS`: staging, prod, dev,
  ...), the name parts of one are the leading or trailing parts of the other's: `staging-api` and
  `api` are related (one application, two environments), and so are `orders` and `orders-worker`;
  `staging-api` and `staging-orders` are not (two applications that each get the other's rights).
- `unmapped`: a user or role that nothing uses (no `Use` in the identity map other than an
  administrator's incidental deploy right) and no person accounts for. Exempt: service-linked
  roles and roles on AWS-reserved paths (`/aws-service-role/`, `/aws-reserved/`); roles used in
  the last 90 days (something outside the ECS map, such as a Lambda function, uses them); roles
  already reported as `ecs_task_role_unused`; EC2 instance roles while some container instance's
  role is unknown; users that are people (`people`) and users without a credential report row
  (whether a person logs in cannot be told).
"""

from __future__ import annotations

import gzip
import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from ecsguard.aws.snapshot import Snapshot
from ecsguard.core.errors import UserError
from ecsguard.core.files import is_gzip
from ecsguard.iam.policy import normalize_policy
from ecsguard.iam.usage import ECS_TASKS, IdentityMap, Use
from ecsguard.posture.context import Resource, family_and_revision

STALE_DAYS = 90
RESERVED_PATHS = ("/aws-service-role/", "/aws-reserved/")
#: name parts that say which environment a family runs in, not which application it is
ENVIRONMENT_WORDS = frozenset(
    {
        "prod",
        "production",
        "prd",
        "staging",
        "stage",
        "stg",
        "dev",
        "development",
        "test",
        "testing",
        "qa",
        "uat",
        "sandbox",
        "preprod",
        "demo",
        "canary",
        "blue",
        "green",
    }
)
#: AWS_EXECUTION_ENV values the AWS SDKs report from ECS (in `exec-env/...` of the user agent)
ECS_USER_AGENT_MARKERS = ("AWS_ECS_FARGATE", "AWS_ECS_EC2")

ReasonCode = Literal[
    "long_lived_key_in_workload",
    "key_older_than_90_days",
    "key_unused_90_days",
    "ecs_task_role_unused",
    "task_role_shared",
    "unmapped",
]
REASON_CODES: tuple[ReasonCode, ...] = (
    "long_lived_key_in_workload",
    "key_older_than_90_days",
    "key_unused_90_days",
    "ecs_task_role_unused",
    "task_role_shared",
    "unmapped",
)


@dataclass(frozen=True)
class Reason:
    code: ReasonCode
    en: str
    ja: str
    #: identifiers the reason rests on: key ids, task definition ARNs, service ARNs
    evidence: tuple[str, ...] = ()

    def text(self, lang: str = "en") -> str:
        return self.ja if lang == "ja" else self.en

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "en": self.en, "ja": self.ja, "evidence": list(self.evidence)}


# ---------------------------------------------------------------------------------------------
# CloudTrail evidence


@dataclass(frozen=True)
class KeyEvidence:
    """CloudTrail calls made with one IAM user's long-lived key from what looks like a workload."""

    access_key_id: str
    user_arn: str
    account: str
    calls: int
    first_seen: str
    last_seen: str
    #: why the calls look like a workload: "ECS user agent", "private address"
    signals: tuple[str, ...]
    user_agents: tuple[str, ...]
    source_ips: tuple[str, ...]


_SAMPLES = 3


@dataclass(frozen=True)
class _Call:
    signal: str
    time: str
    user_arn: str
    account: str
    agent: str
    source: str


def cloudtrail_uses(records: Iterable[Any]) -> dict[str, KeyEvidence]:
    """Access key id -> evidence, for IAM user keys (AKIA...) used from a container user agent or
    a private (RFC 1918) source address. Records are CloudTrail records as in CloudTrail log
    files; anything that is not a call with an IAM user's long-lived key is skipped."""
    calls: dict[str, list[_Call]] = defaultdict(list)
    for record in records:
        if not isinstance(record, Mapping):
            continue
        identity = record.get("userIdentity")
        if not isinstance(identity, Mapping) or identity.get("type") != "IAMUser":
            continue
        key = str(identity.get("accessKeyId") or "")
        if not key.startswith("AKIA"):  # ASIA: a session's temporary key, not the long-lived one
            continue
        agent, source = str(record.get("userAgent") or ""), str(record.get("sourceIPAddress") or "")
        signal = _workload_signal(agent, source)
        if signal:
            calls[key].append(
                _Call(
                    signal,
                    str(record.get("eventTime") or ""),
                    str(identity.get("arn") or ""),
                    str(identity.get("accountId") or ""),
                    agent,
                    source,
                )
            )
    return {key: _evidence(key, found) for key, found in sorted(calls.items())}


def _workload_signal(agent: str, source: str) -> str:
    """ "ECS user agent", "private address", or "" when the call shows neither."""
    if any(marker in agent.upper() for marker in ECS_USER_AGENT_MARKERS):
        return "ECS user agent"
    return "private address" if is_private_address(source) else ""


def is_private_address(text: str) -> bool:
    """Whether `text` is an IPv4 address in 10/8, 172.16/12 or 192.168/16 (RFC 1918). Service
    names ("ecs-tasks.amazonaws.com") and malformed addresses are not."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return False
    return isinstance(address, ipaddress.IPv4Address) and any(
        address in network for network in _RFC1918
    )


_RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


def _evidence(key: str, calls: list[_Call]) -> KeyEvidence:
    times = sorted(c.time for c in calls)
    return KeyEvidence(
        access_key_id=key,
        user_arn=calls[0].user_arn,
        account=calls[0].account,
        calls=len(calls),
        first_seen=times[0],
        last_seen=times[-1],
        signals=tuple(sorted({c.signal for c in calls})),
        user_agents=tuple(sorted({c.agent for c in calls}))[:_SAMPLES],
        source_ips=tuple(sorted({c.source for c in calls}))[:_SAMPLES],
    )


def records_from(document: Any, source: str) -> list[Any]:
    """The records of a decoded CloudTrail file: `{"Records": [...]}` as CloudTrail delivers it,
    a list of records, or one record."""
    if isinstance(document, Mapping) and isinstance(document.get("Records"), list):
        return list(document["Records"])
    if isinstance(document, list):
        return document
    if isinstance(document, Mapping) and "eventName" in document:
        return [document]
    raise UserError(
        f"{source} holds no CloudTrail records",
        'pass CloudTrail log files: {"Records": [...]}, a JSON list of records, or one record',
    )


def load_cloudtrail(path: Path | str) -> list[Any]:
    """The records of a CloudTrail log file (.json or .json.gz), or of every such file under a
    directory, in file name order."""
    root = Path(path)
    if root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.name.endswith((".json", ".json.gz")))
    elif root.exists():
        files = [root]
    else:
        raise UserError(f"CloudTrail path {root} does not exist", "check the path")
    records: list[Any] = []
    for file in files:
        try:
            raw = file.read_bytes()
            if is_gzip(raw):
                raw = gzip.decompress(raw)
            document = orjson.loads(raw)
        except (OSError, EOFError) as err:
            raise UserError(
                f"cannot read CloudTrail file {file}: {err}", "check the file"
            ) from None
        except orjson.JSONDecodeError as err:
            raise UserError(
                f"CloudTrail file {file} is not valid JSON ({err})",
                "pass log files as CloudTrail writes them to S3",
            ) from None
        records.extend(records_from(document, str(file)))
    return records


# ---------------------------------------------------------------------------------------------
# the rules


def stray_identities(
    snapshot: Snapshot,
    identity_map: IdentityMap,
    now: datetime | None = None,
    cloudtrail: Mapping[str, KeyEvidence] | None = None,
) -> dict[str, list[Reason]]:
    """Principal ARN -> its reasons, for every stray user and role (module docstring); principals
    with no reason are left out. `cloudtrail` is `cloudtrail_uses(records)`."""
    at = _aware(now or snapshot.collected_at)
    reasons: dict[str, list[Reason]] = defaultdict(list)
    for arn, reason in _rules(snapshot, identity_map, at, cloudtrail or {}):
        reasons[arn].append(reason)
    order = {code: i for i, code in enumerate(REASON_CODES)}
    return {
        arn: sorted(found, key=lambda r: order[r.code]) for arn, found in sorted(reasons.items())
    }


def _rules(
    snapshot: Snapshot, imap: IdentityMap, now: datetime, cloudtrail: Mapping[str, KeyEvidence]
) -> Iterator[tuple[str, Reason]]:
    yield from _keys_in_workloads(snapshot, imap, cloudtrail)
    yield from _key_age(snapshot, now)
    unused_task_roles = dict(_unused_task_roles(snapshot, imap))
    yield from unused_task_roles.items()
    yield from _shared_task_roles(imap)
    yield from _unmapped(snapshot, imap, now, set(unused_task_roles))


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _when(value: object) -> datetime | None:
    """An ISO-8601 time; None for the credential report's "N/A", "no_information", ..."""
    if not isinstance(value, str) or not value[:4].isdigit():
        return None
    try:
        return _aware(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def _days(now: datetime, since: datetime) -> int:
    return max(0, (now - since).days)


# --- long-lived keys in workloads ----------------------------------------------------------------


def _keys_in_workloads(
    snapshot: Snapshot, imap: IdentityMap, cloudtrail: Mapping[str, KeyEvidence]
) -> Iterator[tuple[str, Reason]]:
    status = {k.get("AccessKeyId"): k.get("Status", "") for k in snapshot.iam.access_keys}
    owners = _key_owners(snapshot)
    found: dict[str, list[tuple[str, str, str]]] = defaultdict(list)  # arn -> (en, ja, evidence)
    for arn, uses in imap.uses.items():
        for use in uses:
            if use.kind == "access_key_in_env":
                en, ja = _env_place(use)
                inactive = status.get(use.access_key_id) == "Inactive"
                en += " (key inactive)" if inactive else ""
                ja += "（キーは無効）" if inactive else ""
                found[arn].append((en, ja, use.task_definition))
    for key, evidence in cloudtrail.items():
        arn = owners.get(key) or (evidence.user_arn if evidence.account == snapshot.account else "")
        if arn:
            signals_en = " and ".join(evidence.signals)
            signals_ja = "、".join(_SIGNALS_JA.get(s, s) for s in evidence.signals)
            en = (
                f"CloudTrail: key {key} made {evidence.calls}"
                f" call{'s' if evidence.calls != 1 else ''} with signs of a workload"
                f" ({signals_en}), {evidence.first_seen} to {evidence.last_seen}"
            )
            ja = (
                f"CloudTrail: キー {key} がワークロードらしい呼び出しを {evidence.calls} 回"
                f"（{signals_ja}）、{evidence.first_seen} から {evidence.last_seen}"
            )
            found[arn].append((en, ja, key))
    for arn, all_places in sorted(found.items()):
        places = list(dict.fromkeys(all_places))  # one key in one revision run two ways: once
        yield (
            arn,
            Reason(
                "long_lived_key_in_workload",
                "long-lived access key used by a workload: " + "; ".join(p[0] for p in places),
                "長期アクセスキーがワークロードで使われている: " + "; ".join(p[1] for p in places),
                tuple(dict.fromkeys(p[2] for p in places)),
            ),
        )


_SIGNALS_JA = {
    "ECS user agent": "ECS のユーザーエージェント",
    "private address": "プライベートアドレス",
}


def _env_place(use: Use) -> tuple[str, str]:
    family, revision = family_and_revision(use.task_definition)
    where_en = f" in cluster {use.cluster}" if use.cluster else ""
    where_ja = f"（クラスター {use.cluster}）" if use.cluster else ""
    return (
        f"key {use.access_key_id} in variable {use.variable} of container {use.container},"
        f" task definition {family}:{revision}{where_en}",
        f"キー {use.access_key_id} がタスク定義 {family}:{revision}{where_ja or ' '}のコンテナ"
        f" {use.container} の環境変数 {use.variable} にある",
    )


def _key_owners(snapshot: Snapshot) -> dict[str, str]:
    users = {u.get("UserName"): u["Arn"] for u in snapshot.iam.users}
    return {
        k["AccessKeyId"]: users[k["UserName"]]
        for k in snapshot.iam.access_keys
        if k.get("AccessKeyId") and k.get("UserName") in users
    }


# --- access key age and use ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Key:
    label: str
    created: datetime | None
    last_used: datetime | None


def _active_keys(snapshot: Snapshot) -> dict[str, list[_Key]]:
    """User ARN -> its active access keys, from ListAccessKeys; for a user without any there,
    from the credential report's access_key_1/2 columns."""
    users = {u.get("UserName"): u["Arn"] for u in snapshot.iam.users}
    keys: dict[str, list[_Key]] = defaultdict(list)
    listed = set()
    for key in sorted(snapshot.iam.access_keys, key=lambda k: k.get("AccessKeyId", "")):
        listed.add(key.get("UserName"))
        if key.get("Status") == "Active" and key.get("UserName") in users:
            used = _when((key.get("LastUsed") or {}).get("LastUsedDate"))
            keys[users[key["UserName"]]].append(
                _Key(key["AccessKeyId"], _when(key.get("CreateDate")), used)
            )
    for row in snapshot.iam.credential_report:
        name = row.get("user")
        if name in listed or name not in users:
            continue
        for n in (1, 2):
            if str(row.get(f"access_key_{n}_active")).lower() == "true":
                keys[users[name]].append(
                    _Key(
                        f"access key {n}",
                        _when(row.get(f"access_key_{n}_last_rotated")),
                        _when(row.get(f"access_key_{n}_last_used_date")),
                    )
                )
    return keys


def _key_age(snapshot: Snapshot, now: datetime) -> Iterator[tuple[str, Reason]]:
    for arn, keys in sorted(_active_keys(snapshot).items()):
        old = [(k, _days(now, k.created)) for k in keys if k.created]
        old = [(k, days) for k, days in old if days > STALE_DAYS]
        if old:
            yield (
                arn,
                Reason(
                    "key_older_than_90_days",
                    f"active access keys older than {STALE_DAYS} days: "
                    + ", ".join(f"{k.label} ({days} days old)" for k, days in old),
                    f"{STALE_DAYS} 日を超えた有効なアクセスキー: "
                    + "、".join(f"{k.label}（作成から {days} 日）" for k, days in old),
                    tuple(k.label for k, _ in old),
                ),
            )
        unused = [
            (k, _days(now, since))
            for k in keys
            if (since := k.last_used or k.created) and _days(now, since) >= STALE_DAYS
        ]
        if unused:
            yield (
                arn,
                Reason(
                    "key_unused_90_days",
                    f"active access keys unused for {STALE_DAYS} days or more: "
                    + ", ".join(_unused_en(k, days) for k, days in unused),
                    f"{STALE_DAYS} 日以上使われていない有効なアクセスキー: "
                    + "、".join(_unused_ja(k, days) for k, days in unused),
                    tuple(k.label for k, _ in unused),
                ),
            )


def _unused_en(key: _Key, days: int) -> str:
    if key.last_used:
        return f"{key.label} (last used {days} days ago)"
    return f"{key.label} (never used, created {days} days ago)"


def _unused_ja(key: _Key, days: int) -> str:
    if key.last_used:
        return f"{key.label}（最終使用から {days} 日）"
    return f"{key.label}（未使用、作成から {days} 日）"


# --- task roles ----------------------------------------------------------------------------------


def trusts_ecs_tasks(role: Resource) -> bool:
    """Whether the role's trust policy lets ecs-tasks.amazonaws.com assume it."""
    for statement in normalize_policy(role.get("AssumeRolePolicyDocument"))["Statement"]:
        if str(statement.get("Effect", "")).lower() != "allow":
            continue
        principal = statement.get("Principal")
        services = principal.get("Service", []) if isinstance(principal, Mapping) else []
        services = [services] if isinstance(services, str) else services
        actions = [a.lower() for a in statement.get("Action", [])]
        if ECS_TASKS in services and {"sts:assumerole", "sts:*", "*"} & set(actions):
            return True
    return False


def _unused_task_roles(snapshot: Snapshot, imap: IdentityMap) -> Iterator[tuple[str, Reason]]:
    in_task_definitions = {
        use.principal_arn
        for uses in imap.uses.values()
        for use in uses
        if use.kind in ("task_role", "execution_role")
    }
    in_scope = set(imap.task_definitions)
    for role in sorted(snapshot.iam.roles, key=lambda r: r["Arn"]):
        if not trusts_ecs_tasks(role) or role["Arn"] in in_task_definitions:
            continue
        old = sorted(_revisions_naming(snapshot, role) - in_scope)
        names = ", ".join(_td_label(a) for a in old)
        yield (
            role["Arn"],
            Reason(
                "ecs_task_role_unused",
                "trusted by ecs-tasks.amazonaws.com, but no current task definition uses it"
                + (f" (only older revisions: {names})" if old else ""),
                "ecs-tasks.amazonaws.com を信頼しているが、現行のタスク定義はどれも使っていない"
                + (f"（古いリビジョンのみ: {names}）" if old else ""),
                tuple(old),
            ),
        )


def _revisions_naming(snapshot: Snapshot, role: Resource) -> set[str]:
    names = {role["Arn"], role.get("RoleName")}
    return {
        td["taskDefinitionArn"]
        for inv in snapshot.regions.values()
        for td in inv.ecs.task_definitions
        if td.get("taskRoleArn") in names or td.get("executionRoleArn") in names
    }


def _td_label(arn: str) -> str:
    family, revision = family_and_revision(arn)
    return f"{family}:{revision}"


def application_parts(family: str) -> tuple[str, ...]:
    """The parts of a family name that name the application: `staging-api` -> ("api",)."""
    parts = [p for p in family.lower().replace("_", "-").replace(".", "-").split("-") if p]
    kept = tuple(p for p in parts if p not in ENVIRONMENT_WORDS)
    return kept or tuple(parts) or (family.lower(),)


def related_families(first: str, second: str) -> bool:
    """Whether two task definition families belong to one application (module docstring)."""
    a, b = application_parts(first), application_parts(second)
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    return long[: len(short)] == short or long[len(long) - len(short) :] == short


def _shared_task_roles(imap: IdentityMap) -> Iterator[tuple[str, Reason]]:
    for arn, uses in sorted(imap.uses.items()):
        families: dict[str, set[str]] = defaultdict(set)  # family -> services running it
        for use in uses:
            if use.kind == "task_role":
                family, _ = family_and_revision(use.task_definition)
                families[family].update([f"{use.cluster}/{use.service}"] if use.service else [])
        groups = _related_groups(sorted(families))
        if len(groups) > 1:
            described = [
                f + (f" ({', '.join(sorted(families[f]))})" if families[f] else "")
                for f in sorted(families)
            ]
            yield (
                arn,
                Reason(
                    "task_role_shared",
                    f"task role shared by {len(groups)} unrelated applications: "
                    + ", ".join(described),
                    f"無関係な {len(groups)} つのアプリケーションで共有されているタスクロール: "
                    + "、".join(described),
                    tuple(sorted(families)),
                ),
            )


def _related_groups(families: list[str]) -> list[list[str]]:
    """Families partitioned into groups of related ones (relatedness made transitive)."""
    groups: list[list[str]] = []
    for family in families:
        joined = [g for g in groups if any(related_families(family, other) for other in g)]
        merged = [family, *(f for g in joined for f in g)]
        groups = [g for g in groups if g not in joined] + [sorted(merged)]
    return groups


# --- unmapped principals -------------------------------------------------------------------------


def people(snapshot: Snapshot, now: datetime | None = None) -> dict[str, str]:
    """User ARN -> why it is a person: a console password used in the last 90 days, or set in
    the last 90 days and not used yet (counted from when it was set)."""
    at = _aware(now or snapshot.collected_at)
    users = {u.get("UserName"): u for u in snapshot.iam.users}
    found = {}
    for row in snapshot.iam.credential_report:
        user = users.get(row.get("user"))
        if user is None or str(row.get("password_enabled")).lower() != "true":
            continue
        used = _when(row.get("password_last_used")) or _when(user.get("PasswordLastUsed"))
        since = (
            used or _when(row.get("password_last_changed")) or _when(row.get("user_creation_time"))
        )
        if since is not None and (days := _days(at, since)) < STALE_DAYS:
            found[user["Arn"]] = (
                f"console login {days} days ago"
                if used
                else f"console password set {days} days ago"
            )
    return found


def _unmapped(
    snapshot: Snapshot, imap: IdentityMap, now: datetime, reported: set[str]
) -> Iterator[tuple[str, Reason]]:
    persons = people(snapshot, now)
    with_row = {r.get("user") for r in snapshot.iam.credential_report}
    for user in sorted(snapshot.iam.users, key=lambda u: u["Arn"]):
        arn = user["Arn"]
        if _mapped(imap, arn) or arn in persons or user.get("UserName") not in with_row:
            continue
        yield (
            arn,
            Reason(
                "unmapped",
                f"no service uses this user and no person signs in with it (no console login in"
                f" {STALE_DAYS} days)",
                f"このユーザーを使うサービスがなく、{STALE_DAYS} 日間コンソールへのログインもない",
            ),
        )
    for role in sorted(snapshot.iam.roles, key=lambda r: r["Arn"]):
        arn = role["Arn"]
        if (
            _mapped(imap, arn)
            or arn in reported
            or str(role.get("Path", "/")).startswith(RESERVED_PATHS)
            or _recently_used(role, now)
            or (role.get("InstanceProfileList") and imap.unresolved_instances)
        ):
            continue
        yield (
            arn,
            Reason(
                "unmapped",
                f"no service, task, rule or instance uses this role and it was not used in"
                f" {STALE_DAYS} days",
                "このロールを使うサービス、タスク、ルール、インスタンスがなく、"
                f"{STALE_DAYS} 日間使われていない",
            ),
        )


def _mapped(imap: IdentityMap, arn: str) -> bool:
    """Something uses the principal; an administrator's incidental deploy right does not count."""
    return any(not use.incidental for use in imap.uses_of(arn))


def _recently_used(role: Resource, now: datetime) -> bool:
    used = _when((role.get("RoleLastUsed") or {}).get("LastUsedDate"))
    return used is not None and _days(now, used) < STALE_DAYS
