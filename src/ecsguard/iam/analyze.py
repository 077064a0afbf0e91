"""Standalone policy analysis, `ecsguard iam analyze-policy FILE... | -`: one report per policy.

`analyze_policy` reports whether a policy is admin-equivalent, its risks by category (see
`ecsguard.iam.risks` for what each category means), how much it allows per service and access
level, and lint problems. `load_policies` finds the policies in any of the shapes people have at
hand; `analyze_files` does both for files and standard input.

How a document is read:

- Action patterns expand against the AWS action database (`ecsguard.iam.actions`), as IAM
  matches them: wildcards, any case. `NotAction` means every known action except those named.
- A Deny removes actions only when it is unconditional and on `Resource: "*"`; a Deny limited to
  some resources or behind a condition leaves the rest allowed (as `ecsguard.iam.policy` reads it).
- A **risk** is an unscoped grant: an Allow without `Condition`, on `Resource: "*"` or with
  `NotResource` (every resource but a few). A grant limited to named resources, or behind a
  condition, is no risk here: whether it matters depends on the account (a principal's analysis
  decides that). ARNs with wildcards, such as `arn:aws:s3:::*`, count as named resources.
- **access_levels** counts every action the policy allows at all, scoped or not, after Denies.
- A statement without a valid `Effect`, without `Action`/`NotAction` (or with both), or without
  `Resource`/`NotResource` is reported by the lint and otherwise ignored: IAM refuses such a
  policy, so it grants nothing.

Input shapes: a policy document; a managed-policy record (`PolicyName`/`Arn` with `Document` or
`PolicyVersionList`, as in `get-account-authorization-details` and the AWS managed policy data
sets; also `get-policy-version` and `get-role-policy` output); a whole
`get-account-authorization-details` file (every managed policy's default version and every inline
policy, named `role/NAME/inline/POLICY`); a JSON list of any of these.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import re
import urllib.parse
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from ecsguard.core.errors import UserError
from ecsguard.iam import actions, risks
from ecsguard.iam.policy import (
    ESCALATION_PATHS,
    Escalation,
    Statement,
    escalation_paths,
    is_admin_equivalent,
    normalize_policy,
    parse_statements,
)

SHAPES = (
    "give a policy document, a managed-policy record (PolicyName/Arn with Document or "
    "PolicyVersionList), the output of `aws iam get-account-authorization-details`, or a JSON "
    "list of these"
)

#: Non-whitespace characters IAM accepts per policy, by kind of policy. For inline policies the
#: limit is on all of a principal's inline policies together; one policy over it is over for sure.
SIZE_LIMITS = {"managed": 6144, "user": 2048, "group": 5120, "role": 10240}
LIMIT_NAMES = {
    "managed": "customer managed policies",
    "user": "a user's inline policies",
    "group": "a group's inline policies",
    "role": "a role's inline policies",
}
CURRENT_VERSION = "2012-10-17"
OLD_VERSION = "2008-10-17"
PARTITIONS = (
    *("aws", "aws-cn", "aws-us-gov", "aws-eusc"),
    *("aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f"),
)


# ---------------------------------------------------------------------------------------------
# inputs


class PolicyInput(NamedTuple):
    """One policy found in an input. `kind` says which size limit applies: "managed",
    "aws-managed" (exempt), "user", "group", "role", or "" when the input does not say."""

    name: str
    document: Any
    kind: str = ""
    arn: str = ""


def analyze_files(paths: list[str], stdin_text: str | None) -> list[dict[str, Any]]:
    """The report of every policy in the files (`-` is standard input, given as `stdin_text`;
    no paths means standard input). Each report also names its `file` and, when known, `arn`.
    Raises UserError for an unreadable file, invalid JSON or an input that holds no policy."""
    results = []
    for path in paths or ["-"]:
        label = "<stdin>" if path == "-" else path
        for policy in load_policies(_read(path, stdin_text), label):
            try:
                report = analyze_policy(policy.document, policy.name, kind=policy.kind)
            except RecursionError:
                raise UserError(f"{label}: {policy.name} is nested too deeply", SHAPES) from None
            results.append({"file": label, **({"arn": policy.arn} if policy.arn else {}), **report})
    return results


def _read(path: str, stdin_text: str | None) -> str:
    if path == "-":
        if stdin_text is None:
            raise UserError("no standard input to read a policy from", "pipe a policy into `-`")
        return stdin_text
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file", "check the path") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory", "name the JSON files in it") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text", "give a JSON file") from None
    except OSError as error:
        raise UserError(f"{path}: cannot be read ({error.strerror})", "check the path") from None


def load_policies(text: str, name: str) -> list[PolicyInput]:
    """Every policy in a JSON text (see the module docstring for the shapes). `name` names the
    input in messages and names a bare document. Raises UserError naming `name`."""
    data = _parse_json(text, name)
    try:
        found = list(_policies_in(data, name))
    except RecursionError:
        raise UserError(f"{name}: lists nested too deeply", SHAPES) from None
    if not found:
        raise UserError(f"{name}: no policy found", SHAPES)
    return found


def _parse_json(text: str, name: str) -> Any:
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise UserError(f"{name}: empty input", SHAPES)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        try:  # orjson is stricter (NaN, lone surrogates): what json accepts is still a policy
            return json.loads(text)
        except (ValueError, RecursionError):
            pass
        raise UserError(
            f"{name}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}",
            "fix the JSON syntax there",
        ) from None


#: Top-level keys of `aws iam get-account-authorization-details` output.
GAAD_KEYS = ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies")
#: Inline policy lists and the principal names beside them, in GAAD and get-*-policy output.
INLINE = (
    ("user", "UserName", "UserPolicyList"),
    ("group", "GroupName", "GroupPolicyList"),
    ("role", "RoleName", "RolePolicyList"),
)


def _policies_in(data: Any, name: str) -> Iterator[PolicyInput]:
    if isinstance(data, list):
        for position, item in enumerate(data):
            yield from _policies_in(item, f"{name}[{position}]")
        return
    if not isinstance(data, Mapping):
        raise UserError(f"{name}: expected a JSON object or list, found {_json_type(data)}", SHAPES)
    if any(isinstance(data.get(key), list) for key in GAAD_KEYS):
        yield from _authorization_details(data, name)
    elif "Statement" in data:
        yield PolicyInput(name, data)
    elif isinstance(data.get("PolicyVersion"), Mapping):  # get-policy-version
        yield PolicyInput(name, _document(data["PolicyVersion"].get("Document"), name))
    elif "PolicyDocument" in data:  # get-role-policy and friends
        yield _inline_record(data, name)
    elif "PolicyName" in data or "Arn" in data:
        yield _managed_record(data, name)
    elif isinstance(data.get("policies"), list):  # a data set of records, such as the testdata
        yield from _policies_in(data["policies"], name)
    else:
        keys = ", ".join(sorted(str(k) for k in data)[:6]) or "none"
        raise UserError(f"{name}: not an IAM policy (top-level keys: {keys})", SHAPES)


def _authorization_details(data: Mapping[str, Any], name: str) -> Iterator[PolicyInput]:
    for record in _objects(data, "Policies", name):
        yield _managed_record(record, name)
    for kind, name_key, list_key in INLINE:
        for principal in _objects(data, f"{kind.capitalize()}DetailList", name):
            for policy in _objects(principal, list_key, name):
                label = (
                    f"{kind}/{principal.get(name_key, '?')}/inline/{policy.get('PolicyName', '?')}"
                )
                yield PolicyInput(label, _document(policy.get("PolicyDocument"), name), kind)


def _objects(data: Mapping[str, Any], key: str, name: str) -> list[Mapping[str, Any]]:
    """The objects listed under `key` (none when it is missing)."""
    listed = data.get(key) or []
    if not isinstance(listed, list) or not all(isinstance(item, Mapping) for item in listed):
        raise UserError(f"{name}: {key} is not a list of objects", SHAPES)
    return listed


def _inline_record(record: Mapping[str, Any], name: str) -> PolicyInput:
    for kind, name_key, _ in INLINE:
        if name_key in record:
            label = f"{kind}/{record[name_key]}/inline/{record.get('PolicyName', '?')}"
            return PolicyInput(label, _document(record["PolicyDocument"], name), kind)
    label = str(record.get("PolicyName") or name)
    return PolicyInput(label, _document(record["PolicyDocument"], name))


def _managed_record(record: Mapping[str, Any], name: str) -> PolicyInput:
    arn = str(record.get("Arn") or "")
    label = str(record.get("PolicyName") or arn.rpartition("/")[2] or name)
    kind = "aws-managed" if ":iam::aws:policy/" in arn else "managed"
    if "Document" in record:
        return PolicyInput(label, _document(record["Document"], name), kind, arn)
    listed = record.get("PolicyVersionList")
    versions = [v for v in listed if isinstance(v, Mapping)] if isinstance(listed, list) else []
    chosen = next((v for v in versions if v.get("IsDefaultVersion") is True), None)
    chosen = chosen or next(
        (v for v in versions if v.get("VersionId") == record.get("DefaultVersionId")), None
    )
    if chosen is None and len(versions) == 1:
        chosen = versions[0]
    if chosen is None or chosen.get("Document") is None:
        raise UserError(
            f"{name}: managed policy {label} has no default version with a document",
            "`aws iam get-account-authorization-details` includes every document; "
            "`aws iam get-policy` and `list-policies` do not",
        )
    return PolicyInput(label, _document(chosen["Document"], name), kind, arn)


def _document(document: Any, name: str) -> Any:
    """A policy document; the IAM API returns them URL-encoded, the AWS CLI decoded."""
    if not isinstance(document, str):
        return document
    for text in (document, urllib.parse.unquote(document)):
        try:
            return json.loads(text)
        except ValueError:
            continue
    raise UserError(f"{name}: a policy document is neither JSON nor URL-encoded JSON", SHAPES)


def _json_type(value: Any) -> str:
    names = {str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    names |= {dict: "an object", list: "a list"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


# ---------------------------------------------------------------------------------------------
# the action database, indexed once per process


@dataclass(frozen=True)
class _Index:
    every: frozenset[str]  # every action, as the database spells it: "ecs:RunTask"
    service_level: dict[str, tuple[str, str]]  # action -> (service, access level)
    service: dict[str, str]  # action -> service
    service_sizes: dict[str, int]  # service -> how many actions it has
    names: dict[str, dict[str, dict[str, str]]]  # service -> first letter -> lower name -> action


@cache
def _index() -> _Index:
    service_level: dict[str, tuple[str, str]] = {}
    names: dict[str, dict[str, dict[str, str]]] = {}
    for info in actions.expand("*"):
        action = f"{info.service}:{info.name}"
        service_level[action] = (info.service, info.access_level)
        names.setdefault(info.service, {}).setdefault(info.name[:1].lower(), {})[
            info.name.lower()
        ] = action
    sizes = Counter(service for service, _ in service_level.values())
    service = {action: s for action, (s, _) in service_level.items()}
    return _Index(frozenset(service_level), service_level, service, dict(sizes), names)


@cache
def _expand(pattern: str) -> frozenset[str]:
    """The actions one pattern covers; cached, because policies repeat patterns a lot."""
    if not any(ch in pattern for ch in "*?"):  # a plain name: one lookup, not a scan
        info = actions.lookup(pattern)
        return frozenset((info.action,)) if info else frozenset()
    return frozenset(info.action for info in actions.expand(pattern))


def clear_caches() -> None:
    """Forget the pattern expansions computed so far; the action database stays loaded. For
    benchmarks that time an analysis from cold, as a fresh command would run it."""
    for cached in (_expand, _covered, _suggest, _asked_about):
        cached.cache_clear()


@lru_cache(maxsize=65536)
def _covered(patterns: tuple[str, ...], not_action: bool) -> frozenset[str]:
    named = frozenset().union(*(_expand(p.lower()) for p in patterns))
    return _index().every - named if not_action else named


# ---------------------------------------------------------------------------------------------
# analysis


@dataclass(frozen=True)
class _Entry:
    """A statement IAM would accept, with the actions its Action/NotAction covers."""

    statement: Statement
    covers: frozenset[str]
    label: str | int

    @property
    def unscoped_allow(self) -> bool:
        s = self.statement
        return s.effect == "Allow" and not s.condition and (s.not_resource or "*" in s.resources)


def analyze_policy(document: Any, name: str, kind: str = "") -> dict[str, Any]:
    """The report of one policy document (module docstring). `kind` ("managed", "aws-managed",
    "user", "group", "role" or "") picks the size limit to check."""
    readable, shape_problems = _readable(document)
    raws = normalize_policy(readable)["Statement"]
    entries = [
        _Entry(statement, _covered(statement.actions, statement.not_action), _label(statement))
        for statement, raw in zip(parse_statements(readable), raws, strict=True)
        if _valid(raw)
    ]
    denied = frozenset().union(
        *(e.covers for e in entries if e.statement.effect == "Deny" and e.statement.counts)
    )
    allowed = frozenset().union(*(e.covers for e in entries if e.statement.effect == "Allow"))
    view = _policy_view(entries)
    # Most policies touch no IAM action: then neither question needs asking.
    asks = any(statement.effect == "Allow" for statement in view)
    report: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "admin_equivalent": asks and is_admin_equivalent(view),
        "risks": _risks(entries, escalation_paths(view) if asks else [], denied),
        "access_levels": _access_levels(allowed - denied),
        "lint": _lint(document, raws, entries, kind, shape_problems),
    }
    return report


_STRINGS = ("Action", "NotAction", "Resource", "NotResource")


def _readable(document: Any) -> tuple[Any, list[dict[str, Any]]]:
    """The document with elements of the wrong JSON type left out, and a problem for each:
    `Action: 5` or `Condition: "x"` must not stop the analysis of the rest."""
    if not isinstance(document, Mapping):
        return document, []
    listed = document.get("Statement")
    listed = [listed] if isinstance(listed, Mapping) else listed
    if not isinstance(listed, list):  # missing, or a string or a number: reported by the lint
        return {**document, "Statement": []}, []
    problems = []
    statements = []
    for index, raw in enumerate(listed):
        if not isinstance(raw, Mapping):
            statements.append(raw)  # reported by the lint as a malformed statement
            continue
        clean = dict(raw)
        label = raw.get("Sid") if isinstance(raw.get("Sid"), str) and raw.get("Sid") else index
        for key in _STRINGS:
            value = raw.get(key)
            if key not in raw or isinstance(value, str):
                continue
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                continue
            clean[key] = [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
            detail = f"{key} holds {_json_type(value)}; a string or a list of strings is expected"
            problems.append(_problem("malformed_statement", label, detail))
        if "Condition" in raw and not isinstance(raw["Condition"], Mapping):
            detail = f"Condition is {_json_type(raw['Condition'])}; an object is expected"
            problems.append(_problem("malformed_statement", label, detail))
        statements.append(clean)
    return {**document, "Statement": statements}, problems


def _policy_view(entries: list[_Entry]) -> list[Statement]:
    """The statements to hand `is_admin_equivalent` and `escalation_paths`: the unscoped Allows,
    made to read as `Resource: "*"` (policy.py does not count NotResource), and the Denies.

    Only the patterns that can decide what those functions ask are kept: in an Allow, patterns
    granting a step of an escalation path or all of IAM; in a Deny, patterns touching either, or
    matching nothing known (a Deny of an unknown IAM action still counts there). The answers stay
    the same, and policy.py, which matches patterns one by one, gets a handful instead of hundreds.
    """
    steps, iam = _asked_about()
    view = []
    for entry in entries:
        statement = entry.statement
        if statement.effect == "Allow" and not entry.unscoped_allow:
            continue
        if entry.unscoped_allow:
            statement = replace(statement, resources=("*",), not_resource=False)
        if not statement.not_action:
            if statement.effect == "Allow":
                kept = tuple(p for p in statement.actions if _decides_allow(p, steps, iam))
            else:
                kept = tuple(
                    p
                    for p in statement.actions
                    if not (hit := _expand(p.lower())) or hit & (steps | iam)
                )
            if not kept:
                continue
            statement = replace(statement, actions=kept)
        view.append(statement)
    return view


def _decides_allow(pattern: str, steps: frozenset[str], iam: frozenset[str]) -> bool:
    hit = _expand(pattern.lower())
    return bool(hit & steps) or iam <= hit or "?" in pattern  # `?` may stand for a literal `*`


@cache
def _asked_about() -> tuple[frozenset[str], frozenset[str]]:
    """(every action of an escalation path's steps, every IAM action)."""
    steps = {a for path in ESCALATION_PATHS for step in path.steps for a in step}
    return frozenset().union(*(_expand(a.lower()) for a in steps)), _expand("iam:*")


def _label(statement: Statement) -> str | int:
    return statement.sid or statement.index


def _valid(raw: Mapping[str, Any]) -> bool:
    """Whether IAM would accept the statement: an Effect, Action or NotAction (not both), and
    Resource or NotResource. The lint reports what is wrong with the others."""
    effect = raw.get("Effect")
    one_action = bool(raw.get("Action")) != bool(raw.get("NotAction"))
    has_resources = bool(raw.get("Resource") or raw.get("NotResource"))
    valid_effect = isinstance(effect, str) and effect.lower() in ("allow", "deny")
    return valid_effect and one_action and has_resources


def _risks(
    entries: list[_Entry], escalations: list[Escalation], denied: frozenset[str]
) -> list[dict[str, Any]]:
    labels = {e.statement.index: e.label for e in entries}
    found: dict[str, list[dict[str, Any]]] = {category: [] for category in risks.CATEGORIES}
    for escalation in escalations:
        by_statement: dict[int, list[str]] = {}
        for action, item in escalation.grants:
            statement = item if isinstance(item, Statement) else item.statement
            by_statement.setdefault(statement.index, []).append(action)
        for index, granted in sorted(by_statement.items()):
            found["privilege_escalation"].append(
                _risk("privilege_escalation", granted, labels[index], method=escalation.name)
            )
    sizes = _index().service_sizes
    for entry in (e for e in entries if e.unscoped_allow):
        effective = entry.covers - denied
        for category in risks.RULES:
            if hits := effective & risks.category_actions(category):
                extra = (
                    {"services": _per_service(hits)}
                    if category == "infrastructure_modification"
                    else {}
                )
                found[category].append(_risk(category, hits, entry.label, **extra))
        whole = _service_wildcards(entry.statement, effective, sizes)
        if whole:
            found["service_wildcard"].append(
                _risk("service_wildcard", [f"{s}:*" for s in whole], entry.label)
            )
    return [risk for category in risks.CATEGORIES for risk in found[category]]


def _service_wildcards(
    statement: Statement, effective: frozenset[str], sizes: dict[str, int]
) -> list[str]:
    """Services the statement grants whole, today's actions and those AWS adds later: by a
    pattern such as `ecs:*` or `*`, or by a NotAction that leaves the service out entirely.
    A service that an unconditional Deny takes any action of is whole no more."""
    if statement.not_action:
        touched = {_index().service[a] for p in statement.actions for a in _expand(p.lower())}
        touched |= {p.lower().partition(":")[0] for p in statement.actions}
        named = {service for service in sizes if service not in touched}
    else:
        named = set()
        for pattern in statement.actions:
            service, _, name = pattern.lower().partition(":")
            if pattern == "*" or (name and not name.strip("*")):
                if any(ch in service for ch in "*?"):
                    named |= {s for s in sizes if fnmatch.fnmatchcase(s, service)}
                else:
                    named.add(service)
    counts = _per_service(effective)
    # A service the database does not know (retired, or newer) is taken as written.
    return sorted(s for s in named if s not in sizes or counts.get(s) == sizes[s])


def _risk(category: str, granted: Iterable[str], label: str | int, **extra: Any) -> dict[str, Any]:
    return {"category": category, "actions": sorted(granted), "statement": label, **extra}


def _per_service(granted: Iterable[str]) -> dict[str, int]:
    return dict(sorted(Counter(map(_index().service.__getitem__, granted)).items()))


def _access_levels(granted: frozenset[str]) -> dict[str, dict[str, int]]:
    counts = Counter(map(_index().service_level.__getitem__, granted))
    levels: dict[str, dict[str, int]] = {}
    for service in sorted({s for s, _ in counts}):
        levels[service] = {
            level: counts[service, level]
            for level in actions.ACCESS_LEVELS
            if counts[service, level]
        }
    return levels


# ---------------------------------------------------------------------------------------------
# lint


def _problem(problem: str, statement: str | int | None, detail: str) -> dict[str, Any]:
    return {"problem": problem, "statement": statement, "detail": detail}


def _lint(
    document: Any,
    raws: list[dict[str, Any]],
    entries: list[_Entry],
    kind: str,
    shape_problems: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    if not isinstance(document, Mapping):
        found = f"found {_json_type(document)}"
        return [_problem("not_a_policy", None, f"a policy document is a JSON object; {found}")]
    problems = _document_problems(document, kind) + shape_problems
    for index, raw in enumerate(raws):
        label = raw.get("Sid") or index
        problems += _statement_problems(raw, label)
        for key in ("Action", "NotAction"):
            problems += [p for a in raw.get(key, []) if (p := _action_problem(a, label))]
        for key in ("Resource", "NotResource"):
            problems += [p for r in raw.get(key, []) if (p := _arn_problem(r, label))]
    problems += _redundant(entries)
    return problems


def _document_problems(document: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    problems = []
    version = document.get("Version")
    if version is None:
        problems.append(
            _problem(
                "version_missing",
                None,
                f"no Version: IAM reads the policy as {OLD_VERSION}, where policy variables "
                f'such as ${{aws:username}} are plain text; add "Version": "{CURRENT_VERSION}"',
            )
        )
    elif version == OLD_VERSION:
        problems.append(
            _problem(
                "version_old",
                None,
                f"Version {OLD_VERSION} does not support policy variables; use {CURRENT_VERSION}",
            )
        )
    elif version != CURRENT_VERSION:
        problems.append(
            _problem(
                "version_invalid",
                None,
                f"Version {version!r} is not one IAM accepts ({CURRENT_VERSION} or {OLD_VERSION})",
            )
        )
    raw = document.get("Statement")
    statements = [raw] if isinstance(raw, Mapping) else raw if isinstance(raw, list) else []
    if raw is not None and not isinstance(raw, Mapping | list):
        detail = f"Statement is {_json_type(raw)}; a list of statements is expected"
        problems.append(_problem("malformed_statement", None, detail))
    elif not statements:
        problems.append(_problem("no_statements", None, "the policy has no Statement"))
    for position, item in enumerate(statements):
        if not isinstance(item, Mapping):
            found = _json_type(item)
            problems.append(_problem("malformed_statement", position, f"a statement is {found}"))
    if (size_problem := _size_problem(document, kind)) is not None:
        problems.append(size_problem)
    return problems


def _size_problem(document: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    if kind == "aws-managed":  # AWS's own policies are not held to the customer limits
        return None
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    if len(text) <= min(SIZE_LIMITS.values()):
        return None
    size = len("".join(text.split()))  # IAM does not count whitespace
    kinds = [kind] if kind in SIZE_LIMITS else list(SIZE_LIMITS)
    over = [k for k in kinds if size > SIZE_LIMITS[k]]
    if not over:
        return None
    limits = ", ".join(f"{LIMIT_NAMES[k]} ({SIZE_LIMITS[k]:,})" for k in over)
    return _problem(
        "size_over_limit", None, f"{size:,} non-whitespace characters: over the limit for {limits}"
    )


def _statement_problems(raw: Mapping[str, Any], label: str | int) -> list[dict[str, Any]]:
    problems = []
    effect = raw.get("Effect")
    if effect is None:
        problems.append(_problem("missing_effect", label, "no Effect: IAM refuses the policy"))
    elif not isinstance(effect, str) or effect.lower() not in ("allow", "deny"):
        problems.append(
            _problem("invalid_effect", label, f"Effect {effect!r} is not Allow or Deny")
        )
    if "Action" in raw and "NotAction" in raw:
        problems.append(_problem("action_and_not_action", label, "both Action and NotAction"))
    elif not (raw.get("Action") or raw.get("NotAction")):
        problems.append(_problem("missing_action", label, "no Action or NotAction"))
    if not (raw.get("Resource") or raw.get("NotResource")):
        problems.append(_problem("missing_resource", label, "no Resource or NotResource"))
    return problems


_SERVICE = re.compile(r"[a-z0-9*?-]+", re.IGNORECASE)


def _action_problem(pattern: str, label: str | int) -> dict[str, Any] | None:
    if pattern == "*" or _expand(pattern.lower()):
        return None
    service, colon, name = pattern.partition(":")
    if not colon or not name or not _SERVICE.fullmatch(service):
        return _problem("malformed_action", label, f"{pattern!r} is not service:action")
    detail = (
        f"{pattern} matches no action in the AWS action database: a typo, or an action it does "
        "not list (new, or retired)"
    )
    if (suggestion := _suggest(pattern)) is not None:
        detail += f"; did you mean {suggestion}?"
    return _problem("unknown_action", label, detail)


@lru_cache(maxsize=4096)
def _suggest(pattern: str) -> str | None:
    """The closest known action to an unknown one (or the pattern in the closest service,
    when the service is unknown), if close."""
    service, _, name = pattern.lower().partition(":")
    names = _index().names
    if service not in names:
        close = _closest(service, [s for s in names if s[:1] == service[:1]])
        if close is None:
            return None
        service = close
        if (found := names[service].get(name[:1], {}).get(name)) is not None:
            return found
        if any(ch in name for ch in "*?"):
            return f"{service}:{pattern.partition(':')[2]}"
    if any(ch in name for ch in "*?"):
        return None
    # A typo in the first letter is rare: only names that share it are compared.
    same_start = names[service].get(name[:1], {})
    close = _closest(name, same_start)
    return same_start[close] if close is not None else None


def _closest(word: str, candidates: Iterable[str]) -> str | None:
    # Only words of about the same length can be this close: skip the others before difflib.
    near = [c for c in candidates if abs(len(c) - len(word)) <= max(2, len(word) // 5)]
    close = difflib.get_close_matches(word, near, n=1, cutoff=0.85)
    return close[0] if close else None


_VARIABLE = re.compile(r"\$\{[^}]*\}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")


def _arn_problem(resource: str, label: str | int) -> dict[str, Any] | None:
    """The ARN's shape: arn:partition:service:region:account:resource, or "*"."""
    if resource == "*":
        return None
    # A policy variable may hold colons (${aws:username}); it can stand for any value.
    parts = _VARIABLE.sub("$", resource).split(":", 5)
    shape = "arn:partition:service:region:account:resource"
    if len(parts) < 6 or parts[0] != "arn" or not parts[5]:
        return _problem("malformed_arn", label, f'{resource!r} is not {shape} nor "*"')
    _, partition, service, region, account, _ = parts
    wild = re.compile(r"[*?$]")
    reason = ""
    if partition not in PARTITIONS and not wild.search(partition):
        reason = f"partition {partition!r} is not one of {', '.join(PARTITIONS)}"
    elif not _SERVICE.fullmatch(service):
        reason = f"service {service!r} is not a service prefix"
    elif region and not wild.search(region) and not _REGION.fullmatch(region):
        reason = f"region {region!r} is not a region name"
    elif account and not wild.search(account) and account != "aws" and not account.isdigit():
        reason = f"account {account!r} is not an account id"
    elif account.isdigit() and len(account) != 12:
        reason = f"account {account!r} is not 12 digits"
    if not reason:
        return None
    return _problem("malformed_arn", label, f"{resource}: {reason}")


def _redundant(entries: list[_Entry]) -> list[dict[str, Any]]:
    """An Allow that another unconditional Allow with the same resources covers entirely."""
    by_resources: dict[tuple[bool, frozenset[str]], list[_Entry]] = {}
    for entry in entries:
        if entry.statement.effect == "Allow":
            key = (entry.statement.not_resource, frozenset(entry.statement.resources))
            by_resources.setdefault(key, []).append(entry)
    problems = []
    for group in by_resources.values():
        for entry in group:
            cover = next((other for other in group if _covers(other, entry)), None)
            if cover is not None:
                detail = f"statement {cover.label} allows all it allows, on the same resources"
                problems.append(_problem("redundant_statement", entry.label, detail))
    return sorted(problems, key=lambda p: _position(entries, p["statement"]))


def _position(entries: list[_Entry], label: str | int) -> int:
    return next(e.statement.index for e in entries if e.label == label)


def _covers(other: _Entry, entry: _Entry) -> bool:
    """Whether `other` (same resources) allows everything `entry` allows, unconditionally."""
    a, b = entry.statement, other.statement
    if other is entry or b.condition or not entry.covers <= other.covers:
        return False
    unknown = (
        {p.lower() for p in a.actions if not _expand(p.lower())} if not a.not_action else set()
    )
    if unknown and (b.not_action or not unknown <= {p.lower() for p in b.actions}):
        return False
    # Two identical unconditional statements: the later one is the redundant one.
    same = entry.covers == other.covers and not a.condition
    return not same or b.index < a.index
