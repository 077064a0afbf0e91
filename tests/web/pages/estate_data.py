"""A snapshot for the console's findings, IAM and audit pages: the demo estate as the real
collectors saw it (the `demo_snapshot` fixture), with hostile names planted in it so that the
pages' escaping is tested on data that reaches every view."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ecsguard.aws import snapshot as snapshots

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
#: the cluster the demo leaves without Container Insights, renamed (it then fails that check)
HOSTILE_CLUSTER = f"batch{SCRIPT}"
HOSTILE_CLUSTER_ARN = f"arn:aws:ecs:ap-northeast-1:123456789012:cluster/{HOSTILE_CLUSTER}"
#: an admin-equivalent task role (over-privileged, drawn in the identity map), renamed
HOSTILE_ROLE = SCRIPT
HOSTILE_ROLE_ARN = "arn:aws:iam::123456789012:role/notifications-task"
#: a user with a stray reason, renamed
HOSTILE_USER = f"bot{IMG}"


def hostile(snapshot: Any) -> snapshots.Snapshot:
    doc = snapshot.model_dump(mode="json")
    for cluster in doc["regions"]["ap-northeast-1"]["ecs"]["clusters"]:
        if cluster["clusterName"] == "batch":
            cluster["clusterName"], cluster["clusterArn"] = HOSTILE_CLUSTER, HOSTILE_CLUSTER_ARN
    for role in doc["iam"]["roles"]:
        if role["Arn"] == HOSTILE_ROLE_ARN:
            role["RoleName"] = HOSTILE_ROLE
    for user in doc["iam"]["users"]:
        if user["UserName"] == "legacy-batch-bot":
            user["UserName"] = HOSTILE_USER
    return snapshots.Snapshot.model_validate(doc)


def save_into(data_dir: Path, snapshot: Any, name: str = "demo.json.gz") -> Path:
    return snapshots.save(hostile(snapshot), data_dir / "snapshots" / name)
