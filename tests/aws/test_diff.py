"""Drift between snapshots: added, removed, changed with field paths; noise ignored."""

from __future__ import annotations

import copy

from ecsguard.aws.diff import changed_paths, diff, resource_key
from ecsguard.aws.snapshot import RegionInventory, Snapshot

REGION = "ap-northeast-1"


def estate() -> Snapshot:
    snap = Snapshot(account="123456789012")
    inv = snap.regions.setdefault(REGION, RegionInventory())
    inv.ecs.services = [
        {"serviceArn": "arn:svc/api", "desiredCount": 2, "runningCount": 2, "events": [1]},
        {"serviceArn": "arn:svc/web", "desiredCount": 2, "runningCount": 2},
    ]
    inv.ecs.task_definitions = [
        {
            "taskDefinitionArn": "arn:td/api:1",
            "containerDefinitions": [{"name": "api", "image": "api:1", "privileged": False}],
        }
    ]
    inv.ecs.tasks = [{"taskArn": "arn:task/1"}]
    snap.iam.password_policy = {"MinimumPasswordLength": 14}
    return snap


def test_identical_snapshots_have_no_changes() -> None:
    assert diff(estate(), estate()) == []


def test_added_removed_changed_with_paths() -> None:
    old, new = estate(), estate()
    inv = new.regions[REGION]
    inv.ecs.services.pop()  # web removed
    inv.ecs.services[0]["desiredCount"] = 4
    inv.ecs.services[0]["runningCount"] = 3  # volatile: not drift
    inv.ecs.services[0]["events"] = [1, 2]  # volatile
    inv.ecs.task_definitions[0]["containerDefinitions"][0]["privileged"] = True
    inv.ecs.task_definitions.append({"taskDefinitionArn": "arn:td/api:2"})
    new.iam.password_policy = {"MinimumPasswordLength": 8}
    found = {(c.kind, c.key, c.change): c.fields for c in diff(old, new)}
    assert found == {
        ("ecs.services", "arn:svc/web", "removed"): [],
        ("ecs.services", "arn:svc/api", "changed"): ["desiredCount"],
        ("ecs.task_definitions", "arn:td/api:1", "changed"): ["containerDefinitions[0].privileged"],
        ("ecs.task_definitions", "arn:td/api:2", "added"): [],
        ("iam.password_policy", "password_policy", "changed"): ["MinimumPasswordLength"],
    }


def test_tasks_are_state_not_drift_unless_asked() -> None:
    old, new = estate(), estate()
    new.regions[REGION].ecs.tasks = [{"taskArn": "arn:task/2"}]
    assert diff(old, new) == []
    kinds = {(c.key, c.change) for c in diff(old, new, include_ephemeral=True)}
    assert kinds == {("arn:task/1", "removed"), ("arn:task/2", "added")}


def test_region_dropped_counts_as_removed() -> None:
    old, new = estate(), copy.deepcopy(estate())
    new.regions = {}
    removed = [c for c in diff(old, new) if c.change == "removed"]
    assert {c.key for c in removed} >= {"arn:svc/api", "arn:svc/web", "arn:td/api:1"}


def test_key_specs() -> None:
    assert resource_key({"b": "x"}, "a|b") == "x"
    assert (
        resource_key({"logGroupName": "g", "filterName": "f"}, "logGroupName+filterName") == "g/f"
    )


def test_changed_paths_lists_of_different_length() -> None:
    assert changed_paths({"a": [1]}, {"a": [1, 2]}, frozenset()) == ["a"]
    assert changed_paths({"a": {"b": 1}}, {"a": {}}, frozenset()) == ["a.b"]
