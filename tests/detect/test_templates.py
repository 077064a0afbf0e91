"""Log templates (drain3 behind Arrow masking): grouping accuracy on Loghub-2k against Drain's
published figures, masks, batch-size independence, and the JSON state round trip."""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
import pyarrow as pa
import pytest

from ecsguard.detect.templates import (
    GENERIC_MASKS,
    LOGHUB_OPTIONS,
    Mask,
    Miner,
    MinerOptions,
    grouping_accuracy,
    mask_messages,
)

LOGHUB = Path(__file__).parents[2].parent / "shared/testdata/loghub_2k"
#: Drain's grouping accuracy on these samples (Zhu et al., ICSE-SEIP 2019, table of results)
PUBLISHED = {"HDFS": 0.998, "Apache": 1.000, "Zookeeper": 0.967, "Hadoop": 0.948}


def loghub(name: str) -> tuple[list[str], list[str]]:
    """The sample's message contents (header already split off) and ground-truth event ids."""
    with (LOGHUB / name / f"{name}_2k.log_structured.csv").open(newline="") as handle:
        records = list(csv.DictReader(handle))
    return [r["Content"] for r in records], [r["EventId"] for r in records]


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_loghub_grouping_accuracy_at_least_drains(name: str) -> None:
    messages, truth = loghub(name)
    assert len(messages) == 2000
    miner = Miner(LOGHUB_OPTIONS[name])
    predicted = miner.add(messages).ids.to_pylist()
    assert grouping_accuracy(truth, predicted) >= PUBLISHED[name]


@pytest.mark.parametrize("name", ["HDFS", "Apache", "Hadoop"])
def test_the_default_options_also_reach_the_figure_where_no_tuning_is_needed(name: str) -> None:
    messages, truth = loghub(name)
    predicted = Miner().add(messages).ids.to_pylist()
    assert grouping_accuracy(truth, predicted) >= PUBLISHED[name]


def test_results_do_not_depend_on_batch_size() -> None:
    messages, _ = loghub("Zookeeper")
    whole = Miner(LOGHUB_OPTIONS["Zookeeper"]).add(messages).ids.to_pylist()
    miner = Miner(LOGHUB_OPTIONS["Zookeeper"])
    pieces: list[int | None] = []
    for start in range(0, len(messages), 37):
        pieces += miner.add(messages[start : start + 37]).ids.to_pylist()
    assert grouping_accuracy([str(i) for i in whole], [p or 0 for p in pieces]) == 1.0


def test_grouping_accuracy_is_exact_set_equality() -> None:
    assert grouping_accuracy(["a", "a", "b"], [1, 1, 2]) == 1.0
    assert grouping_accuracy(["a", "a", "b"], [1, 1, 1]) == 0.0  # one group too many members
    assert grouping_accuracy(["a", "a", "b"], [1, 2, 3]) == pytest.approx(1 / 3)
    assert grouping_accuracy([], []) == 1.0
    with pytest.raises(ValueError, match="same messages"):
        grouping_accuracy(["a"], [])


def test_generic_masks() -> None:
    line = (
        "task 5f3a9c0d1e2f4a6b from 10.0.12.7:8080 at 2026-11-28T09:00:00.123Z took 12.5 ms "
        "id=3fa85f64-5717-4562-b3fc-2c963f66afa6 addr 0x7ffd blk_-42 "
        "arn:aws:ecs:us-east-1:123456789012:task/prod/abc user42 deadbeef12 ok"
    )
    [masked] = mask_messages(pa.array([line]), GENERIC_MASKS).to_pylist()
    assert masked == (
        "task <ID> from <IP> at <TIME> took <NUM> ms id=<UUID> addr <HEX> blk_<NUM> <ARN> "
        "user42 <ID> ok"
    )


def test_a_list_of_ids_is_one_parameter() -> None:
    masks = (Mask("BLK", r"blk_-?\d+"),)
    [masked] = mask_messages(pa.array(["delete blk_1 blk_-2, blk_3 now"]), masks).to_pylist()
    assert masked == "delete <BLK> now"
    two = mask_messages(pa.array(['"GET / HTTP/1.1" 200 5120', "ids 1, 2, 3"]), GENERIC_MASKS)
    assert two.to_pylist() == ['"GET / HTTP/<NUM>" <NUM> <NUM>', "ids <NUM>"]
    [generic] = mask_messages(pa.array(["rm blk_1 blk_22 blk_-3 done"]), GENERIC_MASKS).to_pylist()
    assert generic == "rm blk_<NUM> done"


def test_masks_run_in_linear_time_on_hostile_lines() -> None:
    hostile = "1" * 50_000 + "x" + "." * 50_000 + "a" * 50_000
    [masked] = mask_messages(pa.array([hostile, None]), GENERIC_MASKS).to_pylist()[:1]
    assert masked is not None and len(masked) < len(hostile)


def test_templates_counts_nulls_and_new_ones() -> None:
    miner = Miner()
    first = miner.add(["user 1 logged in", "user 2 logged in", None, "disk full on /dev/sda1"])
    ids = first.ids.to_pylist()
    assert ids[0] == ids[1] and ids[2] is None and ids[3] not in (ids[0], None)
    assert sorted(first.created) == sorted({ids[0], ids[3]})
    again = miner.add(["user 3 logged in"])
    assert again.created == [] and again.ids.to_pylist() == [ids[0]]
    top = miner.templates()
    assert (top[0].text, top[0].count) == ("user <NUM> logged in", 3)
    assert miner.template(ids[3]) == "disk full on /dev/sda1"
    assert miner.add(["disk full on /dev/sdb2"]).ids.to_pylist() == [ids[3]]
    assert miner.template(ids[3]) == "disk full on <*>"  # Drain generalises the differing word
    assert miner.template(9999) is None and len(miner) == 2
    assert miner.add_one("user 9 logged in") == ids[0]
    assert miner.add([]).ids.to_pylist() == []


def test_state_round_trip_keeps_templates_and_ids() -> None:
    messages, _ = loghub("HDFS")
    miner = Miner(LOGHUB_OPTIONS["HDFS"])
    before = miner.add(messages[:1000]).ids.to_pylist()
    saved = orjson.loads(orjson.dumps(miner.state()))
    restored = Miner.from_state(saved, LOGHUB_OPTIONS["HDFS"])
    assert [(t.id, t.text, t.count) for t in restored.templates()] == [
        (t.id, t.text, t.count) for t in miner.templates()
    ]
    # the same lines land in the same templates, and nothing is new after a restart
    again = restored.add(messages[:1000])
    assert again.created == [] and again.ids.to_pylist() == before
    rest_a = miner.add(messages[1000:])
    rest_b = restored.add(messages[1000:])
    assert rest_a.ids.to_pylist() == rest_b.ids.to_pylist() and rest_a.created == rest_b.created


def test_unknown_state_starts_afresh() -> None:
    assert len(Miner.from_state({}, None)) == 0
    assert len(Miner.from_state({"version": 99, "templates": [[1, ["x"], 1]]})) == 0


def test_max_templates_bounds_memory() -> None:
    miner = Miner(MinerOptions(max_templates=10))
    miner.add([f"event{chr(97 + i % 26)}{chr(97 + i // 26)} happened" for i in range(200)])
    miner.add([f"only {chr(97 + i % 26)} {chr(97 + i // 26)} words here x{i}" for i in range(50)])
    assert len(miner) <= 10 and len(miner.state()["templates"]) <= 10
