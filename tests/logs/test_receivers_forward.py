from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path
from typing import Any

import msgpack
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.receivers import firelens as firelens_receiver
from ecsguard.logs.receivers.forward import (
    ForwardError,
    decode_message,
    gunzip,
    message_context,
    parse,
    to_parsed,
)
from ecsguard.logs.records import ReceiverOptions
from ecsguard.logs.schema import LOGS

SAMPLES = Path(__file__).parents[2].parent / "shared" / "testdata" / "logs" / "samples"
NOW = 1_800_000_000_000_000
OPTS = ReceiverOptions(input_name="capture", ingest_time_us=NOW)
T = 1_700_000_000  # seconds
TASK = "arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef0123456789abcdef"


def event_time(seconds: int, nanos: int) -> msgpack.ExtType:
    return msgpack.ExtType(0, struct.pack(">II", seconds, nanos))


def packb(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def entries_blob(*entries: Any) -> bytes:
    return b"".join(packb(entry) for entry in entries)


def sample(name: str) -> dict[str, Any]:
    if not SAMPLES.is_dir():
        pytest.skip(f"public test data not found at {SAMPLES}")
    value: dict[str, Any] = json.loads((SAMPLES / name).read_text())
    return value


def rows(data: bytes, options: ReceiverOptions = OPTS) -> list[dict[str, Any]]:
    parsed = parse(data, options)
    assert parsed.table == "logs" and parsed.batch.schema == LOGS
    assert parsed.problems == []
    return parsed.batch.to_pylist()


def test_registered() -> None:
    assert RECEIVERS.get("forward") is parse


def test_firelens_record_maps_like_the_http_path() -> None:
    """A FireLens record over forward gives the columns it gives over `http` (bar id, source)."""
    record = sample("firelens-record-fargate.json")
    over_http = firelens_receiver.parse(orjson.dumps({**record, "date": T + 0.5}), OPTS)
    over_forward = rows(packb(["web-firelens-abc", event_time(T, 500_000_000), record]))
    (http_row,) = over_http.batch.to_pylist()
    (forward_row,) = over_forward
    assert forward_row["source"] == "forward" and http_row["source"] == "firelens"
    for column in ("id", "source"):
        del http_row[column], forward_row[column]
    assert forward_row == http_row
    assert forward_row["cluster"] == "tf-ecs-fargate" and forward_row["stream"] == "stdout"


def test_every_mode_decodes_the_same_events() -> None:
    entries = [
        [event_time(T, 123_456_789), {"log": "first", "source": "stderr"}],
        [T + 1, {"log": "second"}],
    ]
    forward = packb(["app", entries])
    packed_bin = packb(["app", entries_blob(*entries)])
    # Fluentd writes PackedForward entries as a str32 header followed by raw msgpack
    blob = entries_blob(*entries)
    packed_str = b"\x92" + packb("app") + b"\xdb" + struct.pack(">I", len(blob)) + blob
    compressed = packb(["app", gzip.compress(blob), {"compressed": "gzip"}])
    results = [rows(data) for data in (forward, packed_bin, packed_str, compressed)]
    for result in results:
        assert [(r["message"], r["stream"]) for r in result] == [
            ("first", "stderr"),
            ("second", "app"),  # no `source` in the record: the tag is the stream
        ]
        assert result[0]["time"].timestamp() == pytest.approx(T + 0.123456, abs=1e-7)
        assert result[1]["time"].timestamp() == T + 1
    assert len({tuple(r["id"] for r in result) for result in results}) == 1


def test_message_mode_times() -> None:
    data = b"".join(
        packb(["app", value, {"log": f"t{i}"}])
        for i, value in enumerate(
            [T, T + 0.25, event_time(T, 7_000), [event_time(T, 9_000), {"meta": 1}], 0]
        )
    )
    times = [r["time"].timestamp() * 1e6 for r in rows(data)]
    assert times == [T * 1e6, T * 1e6 + 250_000, T * 1e6 + 7, T * 1e6 + 9, NOW]


def test_fluent_bit_metadata_entries() -> None:
    """Fluent Bit with retain_metadata_in_forward_mode sends [[time, metadata], record]."""
    data = packb(["app", [[[event_time(T, 0), {"otlp": {}}], {"log": "x"}]]])
    (row,) = rows(data)
    assert row["message"] == "x" and row["time"].timestamp() == T


def test_compressed_with_several_gzip_members_and_chunk() -> None:
    entries = [[event_time(T, i), {"log": f"line {i}"}] for i in range(5)]
    body = gzip.compress(entries_blob(*entries[:2])) + gzip.compress(entries_blob(*entries[2:]))
    option = {"compressed": "gzip", "chunk": "p8n9gmxTQVC8/nh2wlKKeQ==", "size": 5}
    data = packb(["app", body, option])
    assert [r["message"] for r in rows(data)] == [f"line {i}" for i in range(5)]
    message = decode_message(msgpack.unpackb(data))
    assert message.chunk == "p8n9gmxTQVC8/nh2wlKKeQ==" and len(message.events) == 5


def test_ids_follow_the_chunk() -> None:
    """A resent chunk gets the same ids (stored once); equal lines in two messages without a
    chunk are two records."""
    record = {"log": "GET /health 200"}
    first = decode_message(["app", T, record, {"chunk": "c1"}])
    resent = decode_message(["app", T, record, {"chunk": "c1"}])
    ids = [
        to_parsed(m, OPTS, message_context(m, fallback)).batch.column("id").to_pylist()
        for m, fallback in ((first, "conn a 1"), (resent, "conn b 7"))
    ]
    assert ids[0] == ids[1]
    plain = decode_message(["app", T, record])
    one = to_parsed(plain, OPTS, message_context(plain, "conn a 1")).batch.column("id")
    two = to_parsed(plain, OPTS, message_context(plain, "conn a 2")).batch.column("id")
    assert one.to_pylist() != two.to_pylist()


def test_firelens_tag_names_container_and_task_when_metadata_is_off() -> None:
    tag = "web-firelens-0123456789abcdef0123456789abcdef"
    (bare, full) = rows(
        packb(
            [tag, [[T, {"log": "a", "source": "stdout"}], [T, {"log": "b", "ecs_task_arn": TASK}]]]
        )
    )
    assert (bare["container"], bare["task"], bare["stream"]) == (
        "web",
        "0123456789abcdef0123456789abcdef",
        "stdout",
    )
    assert full["container"] == "web" and full["task"] == "0123456789abcdef0123456789abcdef"
    assert full["account"] == "123456789012" and full["cluster"] == "prod"


def test_plain_records_from_an_application_logger() -> None:
    record = {"message": "payment failed", "level": "error", "order": 42, "raw": b"\x00\xff"}
    (row,) = rows(packb(["billing.app", T, record]))
    assert (row["message"], row["level"], row["stream"]) == (
        "payment failed",
        "ERROR",
        "billing.app",
    )
    assert json.loads(row["fields"]) == {
        "message": "payment failed",
        "level": "error",
        "order": 42,
        "raw": "\x00\ufffd",
    }


def test_invalid_utf8_odd_keys_and_deep_values_are_cleaned() -> None:
    deep: Any = "bottom"
    for _ in range(100):
        deep = [deep]
    # str type carrying invalid UTF-8, an int key, an EventTime value, a deep list
    rest = msgpack.packb({7: event_time(T, 0), "deep": deep})  # a fixmap of 2 pairs
    bad_str = b"\xa3\xff\xfeA"  # fixstr of 3 bytes, not UTF-8
    data = b"\x93" + packb("app") + packb(T) + b"\x83" + packb("log") + bad_str + rest[1:]
    parsed = parse(data, OPTS)
    (row,) = parsed.batch.to_pylist()
    assert row["message"] == "\ufffd\ufffdA"
    fields = json.loads(row["fields"])
    assert fields["7"] == T and "deeper than 64 levels" in json.dumps(fields["deep"])


def test_nil_records_skipped_non_maps_kept_as_text() -> None:
    data = packb(["app", [[T, None], [T, "plain line"], [T, [1, 2]], [T, {"log": "ok"}]]])
    parsed = parse(data, OPTS)
    assert parsed.batch.column("message").to_pylist() == ["plain line", "[1,2]", "ok"]
    assert [p.kind for p in parsed.problems] == ["unparsed", "unparsed"]
    assert parsed.problems[0].where == "capture message 1 record 1"


def test_heartbeats_ignored_and_size_mismatch_reported() -> None:
    data = packb(None) + packb(["app", [[T, {"log": "a"}]], {"size": 3}]) + packb(None)
    parsed = parse(data, OPTS)
    assert parsed.batch.num_rows == 1
    assert [p.kind for p in parsed.problems] == ["size_mismatch"]


def test_other_signals_are_not_logs() -> None:
    data = packb(["metrics", [[T, {"cmetrics": b"\x00"}]], {"fluent_signal": 2, "chunk": "x"}])
    parsed = parse(data, OPTS)
    assert parsed.batch.num_rows == 0 and [p.kind for p in parsed.problems] == ["not_logs"]


def test_multiline_joined_within_a_message_per_stream() -> None:
    trace = [
        "2024-05-01 10:00:00 ERROR request failed",
        "java.lang.IllegalStateException: boom",
        "\tat com.example.Foo.bar(Foo.java:10)",
    ]
    a = {"container_name": "a", "source": "stdout"}
    b = {"container_name": "b", "source": "stdout"}
    entries = [
        [T, {**a, "log": trace[0]}],
        [T + 1, {**b, "log": "b says hi"}],
        [T + 2, {**a, "log": trace[1]}],
        [T + 3, {**a, "log": trace[2]}],
        [T + 4, {**a, "log": "2024-05-01 10:00:01 INFO next"}],
    ]
    data = packb(["app", entries])
    assert len(rows(data)) == 5
    joined = rows(data, ReceiverOptions(input_name="x", ingest_time_us=NOW, multiline=True))
    by_message = {r["message"]: r for r in joined}
    assert set(by_message) == {"\n".join(trace), "b says hi", "2024-05-01 10:00:01 INFO next"}
    head = by_message["\n".join(trace)]
    assert head["container"] == "a" and head["time"].timestamp() == T and head["level"] == "ERROR"


@pytest.mark.parametrize(
    ("msg", "kind", "words"),
    [
        ({"tag": "app"}, "bad_message", "not an array"),
        (["app"], "bad_message", "of 1 items"),
        ([7, T, {}], "bad_message", "tag is int"),
        (["app", T], "bad_message", "needs [tag, time, record]"),
        (["app", "x" * 3, "extra", None], "bad_message", "one too many"),
        (["app", [[T]]], "bad_message", "not [time, record]"),
        (["app", [["noon", {}]]], "bad_message", "time is str"),
        (["app", True, {}], "bad_message", "time is bool"),
        (["app", msgpack.ExtType(5, b"12345678"), {}], "bad_message", "ext type 5"),
        (["app", [], "fast"], "bad_message", "option is str"),
        (["app", b"", {"compressed": "zstd"}], "bad_message", "unknown compression"),
        (["app", b"not gzip", {"compressed": "gzip"}], "invalid_gzip", "not valid gzip"),
        (["app", gzip.compress(b"\x91\x01")[:-12], {"compressed": "gzip"}], "invalid_gzip", "end"),
        (["app", b"\x92\x01"], "invalid_msgpack", "end inside an entry"),
        (["app", b"\xc1"], "invalid_msgpack", "packed entries"),
        (["app", b"\x01"], "bad_message", "an entry is int"),
    ],
)
def test_malformed_messages(msg: Any, kind: str, words: str) -> None:
    with pytest.raises(ForwardError) as caught:
        decode_message(msgpack.unpackb(packb(msg), strict_map_key=False))
    assert caught.value.kind == kind and words in caught.value.detail
    # as a capture: the bad message is a problem, the one after it is still read
    parsed = parse(packb(msg) + packb(["app", T, {"log": "after"}]), OPTS)
    assert parsed.batch.column("message").to_pylist() == ["after"]
    assert [p.kind for p in parsed.problems] == [kind]


def test_gzip_bomb_refused() -> None:
    with pytest.raises(ForwardError) as caught:
        gunzip(gzip.compress(b"\x00" * 100_000), limit=10_000)
    assert caught.value.kind == "too_large"


def test_undecodable_msgpack_stops_a_capture() -> None:
    parsed = parse(packb(["app", T, {"log": "kept"}]) + b"\xc1" + packb(["app", T, {}]), OPTS)
    assert parsed.batch.column("message").to_pylist() == ["kept"]
    assert [(p.kind, p.where) for p in parsed.problems] == [
        ("invalid_msgpack", "capture message 2")
    ]
    cut = parse(packb(["app", T, {"log": "kept"}])[:-2], OPTS)
    assert cut.batch.num_rows == 0 and cut.problems[0].detail == "the data ends inside it"


# ----------------------------------------------------------------------------- property tests

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=12)
    | st.binary(max_size=12)
    | st.builds(msgpack.ExtType, st.integers(0, 3), st.binary(max_size=9))
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=6) | st.integers(-(2**63), 2**63), inner, max_size=4)
    ),
    max_leaves=16,
)
entry = st.lists(values, min_size=2, max_size=2) | values
messages = st.one_of(
    values,
    st.tuples(st.text(max_size=8), values, values).map(list),
    st.tuples(st.text(max_size=8), st.lists(entry, max_size=4)).map(list),
    st.tuples(st.text(max_size=8), st.lists(entry, max_size=4), values).map(list),
    st.tuples(st.text(max_size=8), st.lists(entry, max_size=4).map(lambda e: entries_blob(*e))).map(
        list
    ),
)


@settings(max_examples=40, deadline=None)
@given(messages)
def test_arbitrary_messages_decode_or_raise_forward_error(msg: Any) -> None:
    data = packb(msg)
    try:
        message = decode_message(msgpack.unpackb(data, strict_map_key=False))
    except ForwardError:
        pass
    else:
        parsed = to_parsed(message, OPTS, "ctx")
        assert parsed.batch.schema == LOGS
        assert parsed.batch.num_rows <= len(message.events)
    parse(data, OPTS)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    parsed = parse(data, OPTS)
    assert parsed.batch.schema == LOGS
