"""`ecsguard audit` as a user runs it: formats, filters, exit codes, baseline, bad input."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from tests.cli.test_errors import assert_one_clear_error, ecsguard
from tests.posture.builders import snapshot, task_definition

from ecsguard.aws import snapshot as snapshots
from ecsguard.posture.catalogue import markdown

DOCS = Path(__file__).parents[2] / "docs"


@pytest.fixture(scope="module")
def snap_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bad = task_definition("legacy", container={"privileged": True})
    snap = snapshot(ecs={"task_definitions": [task_definition("web"), bad]})
    return snapshots.save(snap, tmp_path_factory.mktemp("audit") / "snap.json.gz")


def test_json_findings_have_the_documented_fields(snap_file: Path) -> None:
    run = ecsguard("audit", "--snapshot", str(snap_file), "--output", "json")
    assert run.returncode == 0, run.stderr
    findings = json.loads(run.stdout)
    required = {
        "check_id",
        "status",
        "severity",
        "resource_arn",
        "region",
        "account",
        "title",
        "message",
        "remediation",
        "pillar",
        "controls",
    }
    assert findings and all(required <= set(f) for f in findings)
    privileged = [f for f in findings if f["check_id"] == "ecs.container_privileged"]
    assert {f["status"] for f in privileged} == {"PASS", "FAIL"}
    assert "Failed checks by pillar" in run.stderr, "the summary goes to stderr, not into JSON"


def test_fail_on_sets_the_exit_code(snap_file: Path) -> None:
    assert ecsguard("audit", "--snapshot", str(snap_file), "--fail-on", "high").returncode == 1
    only_low = ecsguard("audit", "--snapshot", str(snap_file), "--fail-on", "critical")
    assert only_low.returncode == 0


def test_check_filters_and_csv(snap_file: Path) -> None:
    run = ecsguard(
        "audit",
        "--snapshot",
        str(snap_file),
        "--checks",
        "ecs.container_privileged,ecs.container_root_user",
        "--output",
        "csv",
    )
    assert run.returncode == 0, run.stderr
    rows = list(csv.DictReader(io.StringIO(run.stdout)))
    assert {r["check_id"] for r in rows} == {"ecs.container_privileged", "ecs.container_root_user"}
    high = ecsguard("audit", "--snapshot", str(snap_file), "--severity", "high", "--output", "json")
    assert {f["severity"] for f in json.loads(high.stdout)} <= {"critical", "high"}


def test_html_report_to_file_in_japanese(snap_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    run = ecsguard(
        "audit", "--snapshot", str(snap_file), "--output", "html", "--lang", "ja", "-o", str(out)
    )
    assert run.returncode == 0, run.stderr
    assert '<html lang="ja"' in out.read_text() and "report written to" in run.stdout


def test_baseline_marks_new_and_resolved(snap_file: Path, tmp_path: Path) -> None:
    old = snapshots.load(snap_file)
    old.regions["ap-northeast-1"].ecs.task_definitions.append(
        task_definition("gone", container={"privileged": True})
    )
    old_file = snapshots.save(old, tmp_path / "old.json.gz")
    baseline = tmp_path / "base.json"
    run = ecsguard("audit", "--snapshot", str(old_file), "--output", "json", "-o", str(baseline))
    assert run.returncode == 0, run.stderr
    now = ecsguard(
        "audit",
        "--snapshot",
        str(snap_file),
        "--baseline",
        str(baseline),
        "--checks",
        "ecs.container_privileged",
    )
    assert now.returncode == 0, now.stderr
    assert "0 new, 1 unchanged, 1 resolved" in now.stdout


def test_mutelist_mutes(snap_file: Path, tmp_path: Path) -> None:
    mutes = tmp_path / "mute.yaml"
    mutes.write_text("mutelist:\n  - check: ecs.container_privileged\n    reason: lab only\n")
    run = ecsguard(
        "audit",
        "--snapshot",
        str(snap_file),
        "--mutelist",
        str(mutes),
        "--checks",
        "ecs.container_privileged",
        "--output",
        "json",
    )
    statuses = {f["status"]: f.get("mute_reason") for f in json.loads(run.stdout)}
    assert statuses["MUTED"] == "lab only"


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--checks", "ecs.nope"], ["unknown check 'ecs.nope'", "known:"]),
        (["--mutelist", "MUTE"], ["MUTE", "invalid YAML"]),
        (["--baseline", "BASE"], ["BASE", "not valid JSON"]),
    ],
)
def test_bad_input_is_one_clear_line(
    snap_file: Path, tmp_path: Path, args: list[str], needles: list[str]
) -> None:
    mute = tmp_path / "mute.yaml"
    mute.write_text("mutelist:\n\t- oops\n")
    base = tmp_path / "base.json"
    base.write_text("{oops")
    args = [a.replace("MUTE", str(mute)).replace("BASE", str(base)) for a in args]
    needles = [n.replace("MUTE", str(mute)).replace("BASE", str(base)) for n in needles]
    assert_one_clear_error(ecsguard("audit", "--snapshot", str(snap_file), *args), *needles)


def test_corrupt_snapshot(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00broken")
    assert_one_clear_error(ecsguard("audit", "--snapshot", str(bad)), str(bad), "damaged gzip")


def test_catalogue_docs_are_generated_from_the_checks() -> None:
    assert (DOCS / "checks.md").read_text() == markdown("en"), "run `make docs`"
    assert (DOCS / "checks.ja.md").read_text() == markdown("ja"), "run `make docs`"
    listing = ecsguard("audit", "checks", "--output", "json")
    assert len(json.loads(listing.stdout)) >= 60
