from __future__ import annotations

import json
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.logs.request_id_promise import assert_request_id_promise

from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.receivers.lines import parse, split_lines
from ecsguard.logs.records import REQUEST_ID_KEYS, ReceiverOptions, request_ids
from ecsguard.logs.schema import LOGS

NOW = 1_800_000_000_000_000
OPTS = ReceiverOptions(
    input_name="app.log", cluster="prod", service="web", stream="stdout", ingest_time_us=NOW
)


def test_registered() -> None:
    assert RECEIVERS.get("lines") is parse


def test_json_and_plain_and_malformed_lines() -> None:
    data = (
        b'{"timestamp": 1704067200123, "level": "error", "message": "db down", "req": "r1"}\r\n'
        b"\n"
        b"2024-01-01T00:00:01Z WARN disk 91%\n"
        b'{"msg": "half\n'
        b"[1, 2]\n"
    )
    table, batch, problems, _ = parse(data, OPTS)
    assert table == "logs" and batch.schema == LOGS and batch.num_rows == 4
    rows = batch.to_pylist()
    assert [r["message"] for r in rows] == [
        "db down",
        "2024-01-01T00:00:01Z WARN disk 91%",
        '{"msg": "half',
        "[1, 2]",
    ]
    assert [r["level"] for r in rows] == ["ERROR", "WARN", None, None]
    assert rows[0]["time"].timestamp() == 1704067200.123
    assert json.loads(rows[0]["fields"])["req"] == "r1"
    assert rows[1]["time"].timestamp() == 1704067201
    assert rows[2]["fields"] == '{"_unparsed":true}'
    assert rows[2]["time"].timestamp() * 1_000_000 == NOW  # no time in the line: ingest time
    assert all(
        r["cluster"] == "prod" and r["service"] == "web" and r["source"] == "ingest" for r in rows
    )
    assert [(p.kind, p.where) for p in problems] == [("unparsed", "app.log record 3")]


def test_resent_payload_gets_the_same_ids() -> None:
    data = b'same\nsame\n{"msg": "x"}\n'
    first = parse(data, OPTS).batch.column("id").to_pylist()
    later = replace(OPTS, input_name="retry", ingest_time_us=NOW + 10**9)
    assert parse(data, later).batch.column("id").to_pylist() == first
    assert len(set(first)) == 3  # identical lines in one payload stay distinct
    # the same lines from another service are other records, not a resend
    other = parse(data, replace(OPTS, service="api")).batch.column("id").to_pylist()
    assert set(other).isdisjoint(first)


def test_multiline_joins_a_stack_trace() -> None:
    data = (
        b"INFO up\nERROR failed\njava.lang.RuntimeException: x\n\tat a.B.c(B.java:1)\nINFO next\n"
    )
    batch = parse(data, ReceiverOptions(multiline=True, ingest_time_us=NOW)).batch
    assert batch.column("message").to_pylist() == [
        "INFO up",
        "ERROR failed\njava.lang.RuntimeException: x\n\tat a.B.c(B.java:1)",
        "INFO next",
    ]
    assert batch.column("level").to_pylist() == ["INFO", "ERROR", "INFO"]


def test_empty_input() -> None:
    _, batch, problems, _ = parse(b"", OPTS)
    assert batch.num_rows == 0 and batch.schema == LOGS and problems == []


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_parses_one_record_per_non_empty_line(text: str) -> None:
    _, batch, problems, _ = parse(text.encode("utf-8", "surrogatepass"), OPTS)
    expected = [line for line in text.split("\n") if line.strip()]
    assert batch.num_rows == len(expected) == len(split_lines(text))
    assert batch.column("time").null_count == 0
    assert len(problems) <= batch.num_rows


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="{")),
        max_size=20,
    )
)
def test_multiline_never_loses_text(lines: list[str]) -> None:
    data = "\n".join(lines)
    batch = parse(data.encode(), ReceiverOptions(multiline=True, ingest_time_us=NOW)).batch
    kept = "\n".join(batch.column("message").to_pylist())
    assert [line for line in kept.split("\n") if line.strip()] == [
        line.removesuffix("\r") for line in data.split("\n") if line.strip()
    ]


_values = st.none() | st.integers() | st.sampled_from(["a", "b", "", 'x"y', "é"])
_values = _values | st.text(max_size=4)
_objects = st.dictionaries(
    st.sampled_from([*REQUEST_ID_KEYS[:4], "msg", "level", "ctx"]),
    _values | st.dictionaries(st.sampled_from(["request_id", "n"]), _values, max_size=2),
    max_size=5,
)
_lines = st.one_of(
    _objects.map(json.dumps),
    _objects.map(lambda o: json.dumps(o).replace("request_id", "request\\u005fid", 1)),
    st.sampled_from(["plain ERROR text", '{"request_id": "a"', "{not json", "[1]", "  "]),
    # one key written twice, or spelled twice: parsers differ on which value wins
    st.sampled_from(
        ['{"request_id": "a", "request_id": "b"}', '{"request_id": "a", "request\\u005fid": "b"}']
    ),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_lines, min_size=1, max_size=8))
def test_request_id_index_keeps_its_promise(lines: list[str]) -> None:
    """The index the receiver fills from its parsed objects: a record whose key K DuckDB reads as
    the text x has request_id x or null; and where the pipeline's own reading of `fields` finds
    no key at all, neither does it (null there would keep row groups from being skipped)."""
    batch = parse("\n".join(lines).encode(), ReceiverOptions(ingest_time_us=1)).batch
    pipeline = request_ids(batch.column("fields"), batch.column("message")).to_pylist()
    for mine, theirs in zip(batch.column("request_id").to_pylist(), pipeline, strict=True):
        assert theirs != "" or mine == ""
    assert_request_id_promise(batch)
