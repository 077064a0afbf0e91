"""Snapshot files: round trip, and one clear error for every way a file can be wrong."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from ecsguard.aws import snapshot as snapshots
from ecsguard.aws.snapshot import Gap, Snapshot
from ecsguard.core.errors import SnapshotError


def sample() -> Snapshot:
    snap = Snapshot(account="123456789012", caller_arn="arn:aws:iam::123456789012:user/audit")
    region = snap.regions.setdefault("ap-northeast-1", snapshots.RegionInventory())
    region.ecs.clusters.append({"clusterArn": "arn:aws:ecs:ap-northeast-1:1:cluster/prod"})
    region.ecs.task_definitions.append(
        {
            "taskDefinitionArn": "arn:aws:ecs:ap-northeast-1:1:task-definition/web:1",
            "containerDefinitions": [{"name": "web", "image": "nginx:1.27", "essential": True}],
        }
    )
    snap.gaps.append(
        Gap(
            service="ecs", action="ListServices", region="ap-northeast-1", error_code="AccessDenied"
        )
    )
    return snap


@pytest.mark.parametrize("name", ["snap.json", "snap.json.gz"])
def test_round_trip(tmp_path: Path, name: str) -> None:
    original = sample()
    path = snapshots.save(original, tmp_path / name)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    loaded = snapshots.load(path)
    assert loaded == original
    assert loaded.counts()["ecs.task_definitions"] == 1
    assert not list(tmp_path.glob(".*.tmp")), "the temporary file is renamed away"


def test_gap_reads_as_a_sentence() -> None:
    assert (
        str(sample().gaps[0]) == "not collected: AccessDenied on ecs:ListServices in ap-northeast-1"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "is not valid JSON"),
        (b"\x1f\x8b\x08\x00garbage", "damaged gzip"),
        (b'{"hello": 1}', "is not an ecsguard snapshot"),
        (b"[1, 2]", "is not an ecsguard snapshot"),
        (b'{"format": "ecsguard-snapshot", "version": 99, "account": "1"}', "newer than this"),
        (b'{"format": "ecsguard-snapshot", "version": 1}', "corrupt at account"),
        (
            b'{"format": "ecsguard-snapshot", "version": 1, "account": "1", "regions": {"x": 5}}',
            "corrupt at regions.x",
        ),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(SnapshotError) as caught:
        snapshots.load(path)
    assert message in str(caught.value)
    assert str(path) in caught.value.problem


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="does not exist"):
        snapshots.load(tmp_path / "nope.json.gz")


def test_gzip_of_future_version(tmp_path: Path) -> None:
    doc = sample().model_dump(mode="json") | {"version": snapshots.SNAPSHOT_VERSION + 1}
    path = tmp_path / "future.json.gz"
    path.write_bytes(gzip.compress(orjson.dumps(doc)))
    with pytest.raises(SnapshotError, match="upgrade ecsguard"):
        snapshots.load(path)


def test_an_unwritable_place_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(SnapshotError) as err:
        snapshots.save(sample(), blocker / "snap.json.gz")
    assert f"cannot write snapshot {blocker / 'snap.json.gz'}" in err.value.problem
    assert "disk has room" in (err.value.hint or "")


def test_a_full_disk_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Path.write_bytes

    def half_then_full(path: Path, data: bytes) -> int:
        real(path, data[: len(data) // 2])  # what a disk filling up mid-write leaves
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", half_then_full)
    with pytest.raises(SnapshotError, match="No space left on device"):
        snapshots.save(sample(), tmp_path / "snap.json.gz")
    assert list(tmp_path.iterdir()) == []
