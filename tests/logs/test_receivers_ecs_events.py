from __future__ import annotations

import gzip
import json
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.logs.raw_json_promise import LAYOUTS, NESTED, TEXTS, has_float, same_batches

from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.receivers.ecs_events import _fast, _general, parse
from ecsguard.logs.records import ReceiverOptions
from ecsguard.logs.schema import EVENTS

DATA = Path(__file__).parents[2].parent / "shared" / "testdata" / "ecs-events"
NOW = 1_800_000_000_000_000
OPTS = ReceiverOptions(input_name="events.json", ingest_time_us=NOW)


def files() -> list[Path]:
    if not DATA.is_dir():
        pytest.skip(f"public test data not found at {DATA}")
    return sorted(p for p in DATA.glob("ecs-*.json"))


def test_registered() -> None:
    assert RECEIVERS.get("ecs_events") is parse


def test_each_sample_event() -> None:
    for path in files():
        event = json.loads(path.read_bytes())
        table, batch, problems, _ = parse(path.read_bytes(), OPTS)
        assert table == "events" and batch.schema == EVENTS and batch.num_rows == 1
        row = batch.to_pylist()[0]
        assert (row["id"], row["source"], row["detail_type"]) == (
            event["id"],
            "aws.ecs",
            event["detail-type"],
        )
        assert json.loads(row["detail"]) == event["detail"]
        assert json.loads(row["resources"]) == event["resources"]
        if "time" in event:
            assert problems == [] and row["time"].isoformat().startswith(event["time"][:19])
        else:  # the truncated doc example has no time: ingest time, and said so
            assert [p.kind for p in problems] == ["bad_record"]
            assert row["time"].timestamp() * 1_000_000 == NOW


def test_a_list_and_ndjson_batch() -> None:
    events = [json.loads(p.read_bytes()) for p in files()]
    as_list = parse(json.dumps(events).encode(), OPTS).batch
    as_lines = parse("\n".join(json.dumps(e) for e in events).encode(), OPTS).batch
    assert as_list.num_rows == len(events) and as_list.equals(as_lines)


def test_bad_input_is_problems() -> None:
    _, batch, problems, _ = parse(b'{"id": "a", "time": "2024-01-01T00:00:00Z"}\n{oops\n7\n', OPTS)
    assert batch.num_rows == 1
    assert [p.kind for p in problems] == ["invalid_json", "bad_record"]
    assert problems[0].where == "events.json line 2"


def test_missing_id_gets_a_stable_hash() -> None:
    body = b'{"source": "aws.ecs", "time": "2024-01-01T00:00:00Z", "detail": {}}'
    first = parse(body, OPTS).batch.column("id")[0].as_py()
    assert first and first == parse(body, OPTS).batch.column("id")[0].as_py()


# --------------------------------------------------------------------------- property tests


SCALARS = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
EVENT_KEYS = st.sampled_from(["id", "source", "detail-type", "time", "detail", "resources"])


@given(st.binary())
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    assert parse(data, OPTS).batch.schema == EVENTS
    parse(gzip.compress(data, mtime=0), OPTS)


@given(st.lists(st.dictionaries(EVENT_KEYS, SCALARS | st.lists(SCALARS, max_size=3)), max_size=5))
def test_events_of_any_shape_never_raise(events: list[dict[str, object]]) -> None:
    parsed = parse(orjson.dumps(events), OPTS)
    assert parsed.batch.num_rows <= len(events)
    assert parsed.batch.num_rows + len(parsed.problems) >= len(events)


# ------------------------------------------- the msgspec path gives the general path's batch

TIMES = st.sampled_from(["2026-11-29T17:47:29Z", "2026-11-29T17:47:29.5Z", "soon"])
EVENT = st.fixed_dictionaries(
    {"id": TEXTS, "time": TIMES},
    optional={
        "version": st.just("0"),
        "source": TEXTS,
        "detail-type": TEXTS,
        "account": TEXTS,
        "region": TEXTS,
        "resources": st.lists(TEXTS, max_size=2) | NESTED,
        "detail": NESTED,
    },
)
OPTIONS = ReceiverOptions(input_name="e.json", ingest_time_us=NOW, account="1", region="r")


@settings(max_examples=300)
@given(st.lists(EVENT, max_size=4) | EVENT, st.sampled_from(sorted(LAYOUTS)))
def test_the_msgspec_path_gives_the_general_batch(
    doc: list[dict[str, object]] | dict[str, object], layout: str
) -> None:
    data = LAYOUTS[layout](doc)
    fast, general = _fast(data, OPTIONS), _general(data, OPTIONS)
    events = doc if isinstance(doc, list) else [doc]
    if not all(e["id"] and e["time"] != "soon" for e in events):
        assert fast is None  # the general path reports the time, or hashes an id
        return
    assert fast is not None and fast.problems == general.problems == []
    same_batches(fast.batch, general.batch, ("resources", "detail"), exact=not has_float(doc))


@pytest.mark.parametrize(
    "data",
    [
        b'{"id": "a", "time": "2026-11-29T17:47:29Z"}\n{"id": "b", "time": "2026-11-29T17:47:29Z"}',
        b'[{"id": "a", "time": "2026-11-29T17:47:29Z", "source": 7}]',
        b'[{"id": "a", "time": "2026-11-29T17:47:29Z", "detail": {"x": "\xff"}}]',
        b'[{"time": "2026-11-29T17:47:29Z"}]',
        b"[7]",
    ],
)
def test_other_bodies_go_the_general_path(data: bytes) -> None:
    assert _fast(data, OPTS) is None
    assert parse(data, OPTS) == _general(data, OPTS)
