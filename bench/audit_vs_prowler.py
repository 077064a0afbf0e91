"""Audit versus Prowler: which planted mistakes each tool catches, how fast and how cheaply.

One moto server on 127.0.0.1 is seeded once with the demo estate (src/ecsguard/demo/estate.yaml,
whose `planted:` list names every deliberate mistake). Then `ecsguard audit` and Prowler run
against it, one after the other, each as its own process pointed at the server with
AWS_ENDPOINT_URL.

- Caught: a planted problem is caught when the tool reports FAIL for one of the checks that CATCHES
  (below) maps to it, on the planted resource (the estate's `where`, resolved against the server).
- API calls: counted the same way for both tools, as HTTP requests the moto server received during
  the tool's run (werkzeug's access log: one line per request). Moto's request recorder gives the
  breakdown by service and operation.
- Wall time: the tool's whole process, start to exit (Prowler's includes loading its check metadata
  and compliance frameworks; it prints its own scan time, reported beside).

Prowler runs from its own virtualenv, bench/.prowler-venv, created on the first run
(`pip install prowler==PROWLER_VERSION`, a few minutes).

    .venv/bin/python bench/audit_vs_prowler.py [--keep DIR]
        [--prowler-services ecs ecr iam cloudtrail cloudwatch]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from ecsguard.aws.session import AwsOptions, AwsSession
from ecsguard.demo.emulator import MotoServer
from ecsguard.demo.seed import load_estate, seed
from peer_venv import ensure_peer  # bench/ is on sys.path when run as a script

REGION = "ap-northeast-1"
BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results" / "audit_vs_prowler.json"
PROWLER_VENV = BENCH / ".prowler-venv"
PROWLER_VERSION = "5.46.0"  # the newest 5.x on PyPI when this bench was written; installs on 3.11
PROWLER_SERVICES = ("ecs", "ecr", "iam", "cloudtrail", "cloudwatch")
TOOL_TIMEOUT = 900

# Planted id -> for each tool, the checks whose FAIL on the planted resource counts as catching it.
# Only checks whose intent covers the mistake are listed (a check that fails for every user, such
# as Prowler's hardware-MFA check, does not "catch" the one user without MFA). `check@kind:name`
# points a check at another resource than the planted `where`: ecsguard reports an administrator
# task role on the task definition that runs with it. An empty list: the tool has no such check.
# Not counted for Prowler on task-role-administrator: iam_aws_attached_policy_no_administrative_
# privileges fails on the AWS managed policy AdministratorAccess itself, without naming who has it,
# and iam_role_administratoraccess_policy skips every role a service can assume.
CATCHES: dict[str, dict[str, list[str]]] = {
    "everyone-administrator": {
        "prowler": ["iam_group_administrator_access_policy"],
        "ecsguard": ["iam.group_admin_policy"],
    },
    "console-user-without-mfa": {
        "prowler": ["iam_user_mfa_enabled_console_access"],
        "ecsguard": ["iam.user_console_mfa"],
    },
    "stray-iam-user": {
        "prowler": [
            "iam_policy_attached_only_to_group_or_roles",
            "iam_user_accesskey_unused",
            "iam_rotate_access_key_90_days",
        ],
        "ecsguard": [
            "iam.user_direct_policies",
            "iam.unused_credentials",
            "iam.access_key_rotation",
        ],
    },
    "access-key-in-task-env": {
        "prowler": ["ecs_task_definitions_no_environment_secrets"],
        "ecsguard": ["ecs.container_env_secrets"],
    },
    "task-role-administrator": {
        "prowler": ["iam_role_administratoraccess_policy"],
        "ecsguard": [
            "ecs.task_role_admin@task_definition:notifications",
            "ecs.task_role_escalation@task_definition:notifications",
        ],
    },
    "privileged-container": {
        "prowler": ["ecs_task_definitions_no_privileged_containers"],
        "ecsguard": ["ecs.container_privileged"],
    },
    "container-without-logging": {
        "prowler": ["ecs_task_definitions_logging_enabled"],
        "ecsguard": ["ecs.container_log_configuration"],
    },
    "container-runs-as-root": {
        "prowler": ["ecs_task_definitions_host_networking_mode_users"],
        "ecsguard": ["ecs.container_root_user"],
    },
    "plaintext-secret-in-env": {
        "prowler": ["ecs_task_definitions_no_environment_secrets"],
        "ecsguard": ["ecs.container_env_secrets"],
    },
    "image-latest-tag": {
        "prowler": [],
        "ecsguard": ["ecs.container_image_mutable_tag"],
    },
    "public-ip-service": {
        "prowler": ["ecs_service_no_assign_public_ip"],
        "ecsguard": ["ecs.service_public_ip", "ecs.service_public_ip_in_public_subnet"],
    },
    "no-deployment-circuit-breaker": {
        "prowler": [],
        "ecsguard": ["ecs.service_deployment_rollback"],
    },
    "container-insights-disabled": {
        "prowler": ["ecs_cluster_container_insights_enabled"],
        "ecsguard": ["ecs.cluster_container_insights"],
    },
    "container-insights-default": {
        "prowler": ["ecs_cluster_container_insights_enabled"],
        "ecsguard": ["ecs.cluster_container_insights"],
    },
    "trail-without-log-validation": {
        "prowler": ["cloudtrail_log_file_validation_enabled"],
        "ecsguard": ["cloudtrail.log_file_validation"],
    },
    "open-security-group": {
        "prowler": ["ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_22"],
        "ecsguard": ["ec2.security_group_admin_ports_open"],
    },
    "ecr-mutable-unscanned": {
        "prowler": [
            "ecr_repositories_tag_immutability",
            "ecr_repositories_scan_images_on_push_enabled",
            "ecr_repositories_lifecycle_policy_enabled",
        ],
        "ecsguard": [
            "ecr.repository_tag_immutability",
            "ecr.repository_scan_on_push",
            "ecr.repository_lifecycle_policy",
        ],
    },
    "ecr-unscanned": {
        "prowler": [
            "ecr_repositories_scan_images_on_push_enabled",
            "ecr_repositories_lifecycle_policy_enabled",
        ],
        "ecsguard": ["ecr.repository_scan_on_push", "ecr.repository_lifecycle_policy"],
    },
    "log-group-no-retention": {
        "prowler": ["cloudwatch_log_group_retention_policy_specific_days_enabled"],
        "ecsguard": ["logs.ecs_log_group_retention"],
    },
    "ecr-basic-scanning": {
        "prowler": ["ecr_registry_enhanced_scanning_enabled"],
        "ecsguard": ["ecr.registry_enhanced_scanning"],
    },
    "root-without-mfa": {
        "prowler": ["iam_root_mfa_enabled", "iam_root_hardware_mfa_enabled"],
        "ecsguard": ["iam.root_mfa"],
    },
    "task-stopped-oom": {
        "prowler": [],
        "ecsguard": ["ecs.tasks_stopped_out_of_memory"],
    },
    "task-stopped-health-check": {
        "prowler": [],
        "ecsguard": ["ecs.tasks_stopped_health_check"],
    },
}

TOOLS = ("prowler", "ecsguard")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ACCESS = re.compile(r'\] "([A-Z]+) (\S+) HTTP/[0-9.]+" (\d{3}) ')
_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/")


# ------------------------------------------------------------------------------------------------
# counting what the server received


@dataclass
class Window:
    """What the moto server received between `open` and `close`."""

    requests: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    operations: Counter[str] = field(default_factory=Counter)
    unparsed_recordings: int = 0


class Meter:
    """Counts HTTP requests from the server's access log; names them from moto's recorder."""

    def __init__(self, server: MotoServer, recording: Path) -> None:
        assert server.log_path is not None, "MotoServer exposes its log file once started"
        self.server = server
        self.log = server.log_path
        self.recording = recording
        self._offset = 0

    def _moto_api(self, action: str) -> None:
        request = urllib.request.Request(
            f"{self.server.endpoint}/moto-api/recorder/{action}", data=b"", method="POST"
        )
        with urllib.request.urlopen(request, timeout=10):
            pass

    def _settle(self) -> None:
        """The server logs a request after answering it: wait until the log stops growing."""
        size, quiet = -1, 0
        while quiet < 3:
            time.sleep(0.1)
            now = self.log.stat().st_size
            quiet = quiet + 1 if now == size else 0
            size = now

    def open(self) -> None:
        self._settle()
        self._offset = self.log.stat().st_size
        self._moto_api("reset-recording")
        self._moto_api("start-recording")

    def close(self) -> Window:
        self._settle()
        self._moto_api("stop-recording")
        with self.log.open("rb") as fh:
            fh.seek(self._offset)
            text = fh.read().decode("utf-8", "replace")
        window = Window()
        for line in text.splitlines():
            match = _ACCESS.search(_ANSI.sub("", line))
            if match and not match.group(2).startswith("/moto-api"):
                window.requests += 1
                window.statuses[match.group(3)[0] + "xx"] += 1
        if self.recording.exists():
            for line in self.recording.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    window.unparsed_recordings += 1
                    continue
                window.operations[operation_of(entry)] += 1
        return window


def operation_of(entry: dict[str, Any]) -> str:
    """`service:Operation` of a request moto recorded (JSON target, query Action or RPC path)."""
    headers = {k.lower(): v for k, v in (entry.get("headers") or {}).items()}
    scope = _SCOPE.search(headers.get("authorization", ""))
    service = scope.group(1) if scope else "?"
    target = headers.get("x-amz-target")
    if target:
        return f"{service}:{target.rsplit('.', 1)[-1]}"
    url = entry.get("url") or ""
    rpc = re.search(r"/operation/([A-Za-z0-9]+)", url)
    if rpc:
        return f"{service}:{rpc.group(1)}"
    body = entry.get("body") or ""
    if entry.get("body_encoded"):
        try:
            body = base64.b64decode(body).decode("utf-8", "replace")
        except ValueError:
            body = ""
    action = parse_qs(body).get("Action") or parse_qs(url.partition("?")[2]).get("Action")
    if action:
        return f"{service}:{action[0]}"
    parts = urlparse(url)
    query = (
        "?" + "&".join(sorted(parse_qs(parts.query, keep_blank_values=True))) if parts.query else ""
    )
    return f"{service}:{entry.get('method', '?')} {parts.path[:60]}{query}"


# ------------------------------------------------------------------------------------------------
# the tools


def ensure_prowler() -> Path:
    """bench/.prowler-venv with prowler==PROWLER_VERSION; created or fixed when needed."""
    return ensure_peer(PROWLER_VENV, "prowler", PROWLER_VERSION) / "prowler"


def tool_env(server: MotoServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
    env.pop("VIRTUAL_ENV", None)
    env.update(server.env())
    env["NO_COLOR"] = "1"
    return env


@dataclass
class Run:
    command: list[str]
    wall_seconds: float
    returncode: int
    stdout: str
    stderr: str
    window: Window


def run_tool(command: list[str], env: dict[str, str], meter: Meter) -> Run:
    meter.open()
    started = time.perf_counter()
    proc = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False
    )
    wall = time.perf_counter() - started
    window = meter.close()
    return Run(command, wall, proc.returncode, proc.stdout, proc.stderr, window)


def prowler_findings(out_dir: Path) -> list[dict[str, str]]:
    """(check, status, resource) of each finding in Prowler's OCSF output."""
    rows = []
    for path in sorted(out_dir.glob("*.ocsf.json")):
        for item in json.loads(path.read_text(encoding="utf-8") or "[]"):
            check = item.get("metadata", {}).get("event_code", "")
            for resource in item.get("resources") or [{}]:
                rows.append(
                    {
                        "check": check,
                        "status": item.get("status_code", ""),
                        "resource": resource.get("uid") or resource.get("name") or "",
                    }
                )
    return rows


def prowler_errors(log_file: Path, limit: int = 12) -> list[dict[str, Any]]:
    """Prowler's ERROR log records, grouped by source file and first line, most frequent first.

    Its --log-file holds one JSON object per record, but a message with a newline in it (a server's
    HTML error page) spills raw over the next lines, so records are cut at each `{"timestamp"`.
    """
    groups: Counter[str] = Counter()
    if not log_file.exists():
        return []
    text = log_file.read_text(encoding="utf-8", errors="replace")
    for record in re.split(r'(?m)^(?=\{"timestamp")', text):
        head = re.search(
            r'"filename": "([^":]+)[^"]*", "level": "(ERROR|CRITICAL)".*?"message": "([^\n]*)',
            record,
        )
        if head:
            message = head.group(3).rstrip('"}').replace("\\n", " ")[:200]
            groups[f"{head.group(1)}: {message}"] += 1
    return [{"count": n, "error": text} for text, n in groups.most_common(limit)]


def ecsguard_findings(report: Path) -> list[dict[str, str]]:
    if not report.exists():
        return []
    return [
        {"check": f["check_id"], "status": f["status"], "resource": f["resource_arn"]}
        for f in json.loads(report.read_text(encoding="utf-8"))
    ]


# ------------------------------------------------------------------------------------------------
# planted resources and verdicts


def anchor(session: AwsSession, where: str) -> str:
    """A regex for the planted resource inside a finding's resource ARN/id."""
    kind, _, name = where.partition(":")
    if kind == "task_definition":  # the revision services run: the family's latest
        ecs = session.client("ecs", REGION)
        arn = ecs.describe_task_definition(taskDefinition=name)["taskDefinition"][
            "taskDefinitionArn"
        ]
        return re.escape(":" + arn.split(":", 5)[5])
    if kind == "security_group":
        ec2 = session.client("ec2", REGION)
        groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])[
            "SecurityGroups"
        ]
        return re.escape("security-group/" + groups[0]["GroupId"]) if groups else re.escape(name)
    prefixes = {
        "iam_user": r":user/(?:[^:]*/)?",
        "iam_group": r":group/(?:[^:]*/)?",
        "iam_role": r":role/(?:[^:]*/)?",
        "service": ":service/",
        "cluster": ":cluster/",
        "trail": ":trail/",
        "ecr_repository": ":repository/",
        "log_group": ":log-group:",
        "account": ":",  # account:root -> arn:aws:iam::ACCOUNT:root
    }
    if kind == "ecr_registry":  # ecsguard names it ...:registry, Prowler ...:registry/ACCOUNT
        return r":registry(?:/[0-9]{12})?"
    if kind not in prefixes:
        return re.escape(name)
    return prefixes[kind] + re.escape(name)


def verdict(
    tool: str,
    mapped: list[str],
    default_where: str,
    anchors: dict[str, str],
    findings: list[dict[str, str]],
    services_run: set[str] | None,
) -> dict[str, Any]:
    """caught / missed (and why) for one planted problem and one tool."""
    if not mapped:
        return {"caught": False, "cell": "no check", "checks": []}
    by_check: dict[str, list[dict[str, str]]] = {}
    for f in findings:
        by_check.setdefault(f["check"], []).append(f)
    failed, passed, ran = [], [], []
    for entry in mapped:
        check, _, where = entry.partition("@")
        pattern = re.compile(anchors[where or default_where] + r"(?=$|:)")
        rows = by_check.get(check, [])
        if rows:
            ran.append(check)
        on_resource = [r for r in rows if pattern.search(r["resource"])]
        if any(r["status"] == "FAIL" for r in on_resource):
            failed.append(check)
        elif on_resource:
            passed.append(check)
    if failed:
        more = f" +{len(failed) - 1}" if len(failed) > 1 else ""
        return {"caught": True, "cell": f"yes: {failed[0]}{more}", "checks": failed}
    if passed:
        return {"caught": False, "cell": "missed (passed)", "checks": passed}
    if ran:
        return {"caught": False, "cell": "missed (no finding on it)", "checks": ran}
    if services_run is not None:
        skipped = sorted({e.partition("@")[0].split("_")[0] for e in mapped} - services_run)
        if skipped:
            return {"caught": False, "cell": f"not run ({', '.join(skipped)})", "checks": []}
    return {"caught": False, "cell": "no result", "checks": []}


# ------------------------------------------------------------------------------------------------


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [line.format(*header), line.format(*("-" * w for w in widths))]
    out += [line.format(*r) for r in rows]
    return "\n".join(out)


def summarize(run: Run) -> dict[str, Any]:
    return {
        "command": " ".join(run.command),
        "returncode": run.returncode,
        "wall_seconds": round(run.wall_seconds, 2),
        "http_requests": run.window.requests,
        "http_status": dict(sorted(run.window.statuses.items())),
        "requests_by_service": dict(_by_service(run.window.operations).most_common()),
        "requests_by_operation": dict(run.window.operations.most_common()),
        "requests_not_named": run.window.requests - sum(run.window.operations.values()),
    }


def _by_service(operations: Counter[str]) -> Counter[str]:
    out: Counter[str] = Counter()
    for op, n in operations.items():
        out[op.split(":", 1)[0]] += n
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--prowler-services",
        nargs="+",
        default=list(PROWLER_SERVICES),
        help="Prowler --service list (default: %(default)s)",
    )
    parser.add_argument("--keep", type=Path, help="keep both tools' raw output in this directory")
    args = parser.parse_args()

    prowler = ensure_prowler()
    estate = load_estate()
    planted = estate.get("planted") or []
    unknown = sorted(set(CATCHES) - {p["id"] for p in planted})
    unmapped = [p["id"] for p in planted if p["id"] not in CATCHES]
    if unknown or unmapped:
        print(f"warning: mapping out of date: unknown ids {unknown}, unmapped ids {unmapped}")
    _warn_unknown_checks(prowler)

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="audit-vs-prowler-"))
    work.mkdir(parents=True, exist_ok=True)
    recording = work / "moto-recording.jsonl"
    os.environ["MOTO_RECORDER_FILEPATH"] = str(recording)  # the server inherits it

    with MotoServer() as server:
        os.environ.update(server.env())
        session = AwsSession(AwsOptions(regions=(REGION,), endpoint_url=server.endpoint))
        started = time.perf_counter()
        counts = seed(session, estate)
        seeded = time.perf_counter() - started
        print(
            f"seeded {sum(counts.values())} resources in {seeded:.1f} s on {server.endpoint}",
            flush=True,
        )
        anchors = {p["where"]: anchor(session, p["where"]) for p in planted}
        for spec in CATCHES.values():
            for entry in spec["ecsguard"] + spec["prowler"]:
                where = entry.partition("@")[2]
                if where and where not in anchors:
                    anchors[where] = anchor(session, where)

        meter = Meter(server, recording)
        env = tool_env(server)

        eg_report = work / "ecsguard.json"
        eg_command = [
            sys.executable, "-m", "ecsguard", "audit",
            "--endpoint-url", server.endpoint, "--region", REGION,
            "--output", "json", "-o", str(eg_report), "--data-dir", str(work / "ecsguard-data"),
        ]  # fmt: skip
        print("running ecsguard audit ...", flush=True)
        eg = run_tool(eg_command, env, meter)
        print(
            f"  {eg.wall_seconds:.1f} s, {eg.window.requests} requests, exit {eg.returncode}",
            flush=True,
        )

        pr_dir = work / "prowler"
        pr_log = work / "prowler-errors.log"
        pr_command = [
            str(prowler), "aws",
            "--service", *args.prowler_services,
            "--region", REGION,
            "--output-formats", "json-ocsf", "--output-directory", str(pr_dir),
            "--output-filename", "prowler",
            "--no-banner", "--no-color", "--ignore-exit-code-3",
            "--log-level", "ERROR", "--log-file", str(pr_log),
        ]  # fmt: skip
        print("running prowler ...", flush=True)
        pr = run_tool(pr_command, env, meter)
        print(
            f"  {pr.wall_seconds:.1f} s, {pr.window.requests} requests, exit {pr.returncode}",
            flush=True,
        )

    findings = {"ecsguard": ecsguard_findings(eg_report), "prowler": prowler_findings(pr_dir)}
    services_run = {"prowler": set(args.prowler_services), "ecsguard": None}
    rows, out_rows = [], []
    for item in planted:
        spec = CATCHES.get(item["id"], {"prowler": [], "ecsguard": []})
        verdicts = {
            tool: verdict(
                tool, spec[tool], item["where"], anchors, findings[tool], services_run[tool]
            )
            for tool in TOOLS
        }
        rows.append(
            [
                item["id"],
                item["what"][:60],
                verdicts["prowler"]["cell"],
                verdicts["ecsguard"]["cell"],
            ]
        )
        out_rows.append(
            {
                "id": item["id"],
                "what": item["what"],
                "where": item["where"],
                **{tool: verdicts[tool] for tool in TOOLS},
            }
        )

    caught = {tool: [r["id"] for r in out_rows if r[tool]["caught"]] for tool in TOOLS}
    prowler_only = [i for i in caught["prowler"] if i not in caught["ecsguard"]]
    ecsguard_only = [i for i in caught["ecsguard"] if i not in caught["prowler"]]
    speedup = pr.wall_seconds / eg.wall_seconds if eg.wall_seconds else 0.0
    fewer_calls = pr.window.requests / eg.window.requests if eg.window.requests else 0.0
    pr_text = _ANSI.sub("", pr.stdout)
    executed = re.search(r"Executing (\d+) checks", pr_text)
    scan = re.search(r"Scan completed!.*?in ([0-9.]+)s", pr_text)
    eg_statuses = Counter(f["status"] for f in findings["ecsguard"])
    pr_statuses = Counter(f["status"] for f in findings["prowler"])

    print()
    print(table(rows, ["planted", "what", "Prowler", "ecsguard"]))
    print()
    n = len(planted)
    figures = [
        ["caught", f"{len(caught['prowler'])}/{n}", f"{len(caught['ecsguard'])}/{n}", ""],
        [
            "wall time (s)",
            f"{pr.wall_seconds:.1f}",
            f"{eg.wall_seconds:.1f}",
            f"Prowler/ecsguard = {speedup:.1f}x",
        ],
        [
            "API calls (HTTP requests)",
            str(pr.window.requests),
            str(eg.window.requests),
            f"Prowler/ecsguard = {fewer_calls:.2f}x",
        ],
        [
            "findings FAIL / total",
            f"{pr_statuses['FAIL']} / {len(findings['prowler'])}",
            f"{eg_statuses['FAIL']} / {len(findings['ecsguard'])}",
            "",
        ],
    ]
    print(table(figures, ["", "Prowler", "ecsguard", ""]))
    if scan:
        print(
            f"(Prowler's own scan timer: {scan.group(1)} s of {pr.wall_seconds:.1f} s; "
            f"{executed.group(1) if executed else '?'} checks executed)"
        )
    print(f"caught by Prowler, missed by ecsguard: {prowler_only or 'none'}")
    print(f"caught by ecsguard only: {ecsguard_only or 'none'}")
    for name, run in (("ecsguard", eg), ("prowler", pr)):
        top = ", ".join(f"{s} {c}" for s, c in _by_service(run.window.operations).most_common(8))
        print(f"{name} requests by service: {top}; HTTP status {dict(run.window.statuses)}")
    errors = prowler_errors(pr_log)
    if errors:
        print("Prowler errors (grouped):")
        for e in errors[:6]:
            print(f"  {e['count']:>4}  {e['error'][:150]}")
    if eg.returncode != 0:
        print(f"ecsguard audit exited {eg.returncode}: {eg.stderr.strip()[-500:]}")
    if pr.returncode != 0:
        print(f"prowler exited {pr.returncode}: {pr.stderr.strip()[-500:]}")

    report = {
        "bench": "audit_vs_prowler",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
        },
        "versions": {
            "ecsguard": metadata.version("ecsguard"),
            "prowler": PROWLER_VERSION,
            "moto": metadata.version("moto"),
        },
        "estate": {
            "resources_seeded": sum(counts.values()),
            "seed_seconds": round(seeded, 1),
            "planted": n,
        },
        "targets": {
            "catches_all_prowler_catches": not prowler_only,
            "speedup_at_least_5x": speedup >= 5,
        },
        "caught": {tool: len(caught[tool]) for tool in TOOLS},
        "caught_by_prowler_only": prowler_only,
        "caught_by_ecsguard_only": ecsguard_only,
        "speedup_wall": round(speedup, 2),
        "http_requests_ratio_prowler_over_ecsguard": round(fewer_calls, 2),
        "planted": out_rows,
        "ecsguard": {
            **summarize(eg),
            "api_calls_self_reported": _self_reported_calls(work / "ecsguard-data"),
            "findings": dict(eg_statuses),
        },
        "prowler": {
            **summarize(pr),
            "services": args.prowler_services,
            "checks_executed": int(executed.group(1)) if executed else None,
            "checks_with_findings": len({f["check"] for f in findings["prowler"]}),
            "scan_seconds_reported": float(scan.group(1)) if scan else None,
            "findings": dict(pr_statuses),
            "errors": errors,
        },
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(
        f"results written to {RESULTS.relative_to(BENCH.parent)}"
        + (f"; raw output kept in {work}" if args.keep else "")
    )
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def _self_reported_calls(data_dir: Path) -> int | None:
    """The API calls ecsguard counted itself (botocore hooks), from the snapshot it saved."""
    from ecsguard.aws.snapshot import load

    saved = sorted(data_dir.rglob("*.json*"))
    return load(saved[-1]).api.total_calls if saved else None


def _warn_unknown_checks(prowler: Path) -> None:
    """Mapped check ids that neither tool knows (checks are renamed; the table must follow)."""
    from ecsguard.posture import engine

    known_eg = {c.meta.id for c in engine.all_checks()}
    services = prowler.parent.parent / "lib"
    known_pr = {
        p.name
        for p in services.glob("python*/site-packages/prowler/providers/aws/services/*/*")
        if p.is_dir()
    }
    for planted_id, spec in CATCHES.items():
        for tool, known in (("ecsguard", known_eg), ("prowler", known_pr)):
            for entry in spec[tool]:
                check = entry.partition("@")[0]
                if known and check not in known:
                    print(f"warning: {planted_id}: {tool} has no check {check}")


if __name__ == "__main__":
    main()
