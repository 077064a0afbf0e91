"""Which Stratus Red Team detonations the loaded Sigma rules detect (docs/sigma-coverage.md).

Each technique's CloudTrail records (Stratus Red Team's detonation logs, `index.json` naming the
technique and its events) go through the CloudTrail receiver into one batch, then through every
loaded rule. A rule *names* a technique when what its condition asks of eventSource/eventName
alone admits one of the technique's records. A technique some rule names must be detected,
unless every rule naming it asks for something the detonation does not do: those pairs are
listed, with the reason, in NOT_FIRING (reviewed by hand, and kept true by a test: each listed
rule names the technique and does not fire on it).

Regenerate the document with `python -m ecsguard.detect.sigma.coverage > docs/sigma-coverage.md`
from the project root (the data lies in ../shared/testdata).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

from ecsguard.detect.sigma.evaluate import key_index
from ecsguard.detect.sigma.fields import Record
from ecsguard.detect.sigma.loader import SigmaProblem, SigmaSpec, load_sigma
from ecsguard.logs.receivers.cloudtrail import parse
from ecsguard.logs.records import ReceiverOptions

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
DEFAULT_SIGMA = Path("../shared/testdata/sigma")
DEFAULT_LOGS = Path("../shared/testdata/cloudtrail/stratus-red-team-detonation-logs")

#: (technique, rule file stem) → what the rule asks for that the detonation does not do
NOT_FIRING: dict[tuple[str, str], str] = {
    (
        "aws.initial-access.console-login-without-mfa",
        "aws_cloudtrail_console_login_failed_authentication",
    ): "asks for a failed sign-in (errorMessage: Failed authentication); the detonation succeeds",
    ("aws.execution.ec2-user-data", "aws_ec2_startup_script_change"): (
        "asks for requestParameters.attribute = userData (the `--attribute userData` form of "
        "the call); the detonation sends the user data as requestParameters.userData"
    ),
    ("aws.persistence.iam-create-user-login-profile", "aws_iam_s3browser_loginprofile_creation"): (
        "asks for the S3 Browser user agent"
    ),
    ("aws.persistence.iam-create-user-login-profile", "aws_sts_getcalleridentity_trufflehog"): (
        "asks for the TruffleHog user agent"
    ),
    ("aws.persistence.sts-federation-token", "aws_sts_getcalleridentity_trufflehog"): (
        "asks for the TruffleHog user agent"
    ),
    (
        "aws.credential-access.ec2-steal-instance-credentials",
        "aws_sts_getcalleridentity_trufflehog",
    ): ("asks for the TruffleHog user agent"),
    ("aws.persistence.iam-backdoor-user", "aws_iam_s3browser_user_or_accesskey_creation"): (
        "asks for the S3 Browser user agent"
    ),
    ("aws.persistence.iam-create-admin-user", "aws_iam_s3browser_user_or_accesskey_creation"): (
        "asks for the S3 Browser user agent"
    ),
}


@dataclass
class Technique:
    technique_id: str
    title: str
    event_names: list[str]
    records: int
    fired: dict[str, int] = field(default_factory=dict)  # rule → records it matched
    named_by: list[str] = field(default_factory=list)  # loaded rules naming its events
    named_by_unloaded: list[str] = field(default_factory=list)  # rules that could not load

    @property
    def must_detect(self) -> bool:
        """Some loaded rule names it and nothing explains why that rule should stay silent."""
        return any((self.technique_id, rule) not in NOT_FIRING for rule in self.named_by)


@dataclass
class Coverage:
    techniques: list[Technique]
    rules: list[SigmaSpec]
    problems: list[SigmaProblem]


def _named_event_names(mapping: Any) -> set[str]:
    """eventName values written anywhere in a rule's detection (for rules that did not load)."""
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if str(key).split("|")[0] == "eventName":
                    values = value if isinstance(value, list) else [value]
                    found.update(str(v) for v in values if isinstance(v, str))
                else:
                    visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    if isinstance(mapping, dict):
        visit(mapping.get("detection"))
    return found


def _unloaded_names(sigma_dir: Path, problems: list[SigmaProblem]) -> dict[str, set[str]]:
    names: dict[str, set[str]] = {}
    for problem in problems:
        try:
            docs = list(yaml.load_all((sigma_dir / problem.path).read_text(), _LOADER))
        except (OSError, yaml.YAMLError):
            continue
        for doc in docs:
            names.setdefault(Path(problem.path).stem, set()).update(_named_event_names(doc))
    return names


def names_events(spec: SigmaSpec, pairs: list[tuple[Any, ...]]) -> bool:
    """Does the rule ask for one of these (eventName, eventSource) pairs."""
    test = spec.compiled.names_events
    if test is None:
        return False
    return any(test(Record({"event_name": n, "event_source": s})) for n, s in pairs)


def stratus_coverage(sigma_dir: Path = DEFAULT_SIGMA, logs_dir: Path = DEFAULT_LOGS) -> Coverage:
    specs, problems = load_sigma(sigma_dir)
    unloaded = _unloaded_names(sigma_dir, problems)
    techniques = []
    for entry in json.loads((logs_dir / "index.json").read_text()):
        data = (logs_dir / entry["file"]).read_bytes()
        batch = parse(data, ReceiverOptions(input_name=entry["file"])).batch
        technique = Technique(
            entry["technique_id"], entry["title"], sorted(entry["event_names"]), batch.num_rows
        )
        pairs = key_index(batch, ("event_name", "event_source")).keys
        for spec in specs:
            matched = spec.matcher.rows(batch)
            if matched:
                technique.fired[spec.name] = len(matched)
            if names_events(spec, pairs):
                technique.named_by.append(spec.name)
        technique.named_by_unloaded = sorted(
            rule
            for rule, patterns in unloaded.items()
            if any(
                fnmatchcase(event.lower(), pattern.lower())
                for event in technique.event_names
                for pattern in patterns
            )
        )
        techniques.append(technique)
    return Coverage(techniques, specs, problems)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def markdown(coverage: Coverage) -> str:
    techniques = coverage.techniques
    detected = [t for t in techniques if t.fired]
    named_silent = [t for t in techniques if t.named_by and not t.fired]
    unnamed = [t for t in techniques if not t.named_by and not t.fired]
    documents = len(coverage.rules) + len(coverage.problems)
    lines = [
        "# Sigma coverage of the Stratus Red Team detonations",
        "",
        "<!-- generated by `python -m ecsguard.detect.sigma.coverage`; do not edit -->",
        "",
        "SigmaHQ's AWS CloudTrail rules (../shared/testdata/sigma) over the CloudTrail records of",
        "Stratus Red Team's detonations (../shared/testdata/cloudtrail), each technique's records",
        "read by the CloudTrail receiver and evaluated as the `sigma` rule type does.",
        "",
        f"- {len(coverage.rules)} of {documents} Sigma documents loaded; "
        f"{len(coverage.problems)} could not be (listed at the end, with the reason).",
        f"- {len(techniques)} techniques: {len(detected)} detected, {len(named_silent)} named by "
        f"a rule that asks for more than the detonation does, {len(unnamed)} named by no loaded "
        "rule.",
        "- Every technique a loaded rule names is detected, except where the table "
        '"Named, not detected" says why (a test checks both).',
        "",
        "## Detected",
        "",
    ]
    lines += _table(
        ["technique", "events", "records", "rules that fired (records matched)"],
        [
            [
                f"`{t.technique_id}`",
                ", ".join(t.event_names),
                str(t.records),
                ", ".join(f"`{rule}` ({n})" for rule, n in sorted(t.fired.items())),
            ]
            for t in detected
        ],
    )
    lines += ["", "## Named, not detected", ""]
    silent_rows = [
        [f"`{t.technique_id}`", f"`{rule}`", NOT_FIRING.get((t.technique_id, rule), "?")]
        for t in techniques
        for rule in t.named_by
        if rule not in t.fired
    ]
    lines += _table(["technique", "rule naming its events", "why it does not fire"], silent_rows)
    lines += ["", "## Named by no loaded rule", ""]
    lines += _table(
        ["technique", "events", "named by rules that could not be loaded"],
        [
            [
                f"`{t.technique_id}`",
                ", ".join(t.event_names),
                ", ".join(f"`{r}`" for r in t.named_by_unloaded) or "-",
            ]
            for t in unnamed
        ],
    )
    lines += ["", "## Rules that could not be loaded", ""]
    lines += _table(
        ["file", "rule", "reason"],
        [[f"`{p.path}:{p.line}`", p.rule, p.reason] for p in coverage.problems],
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Print docs/sigma-coverage.md.")
    parser.add_argument("--sigma", type=Path, default=DEFAULT_SIGMA)
    parser.add_argument("--logs", type=Path, default=DEFAULT_LOGS)
    args = parser.parse_args(argv)
    print(markdown(stratus_coverage(args.sigma, args.logs)), end="")


if __name__ == "__main__":
    main()
