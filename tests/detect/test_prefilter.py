"""The event-pattern prefilter (eventpattern/prefilter.py) and the row view it reads
(records.RowView): it may keep rows no pattern matches, never drop one that some pattern does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecsguard.detect.eventpattern import PatternSet, compile_pattern
from ecsguard.detect.eventpattern.errors import InvalidPatternError
from ecsguard.detect.eventpattern.flatten import flatten
from ecsguard.detect.eventpattern.prefilter import Prefilter
from ecsguard.detect.eventpattern.records import RowView, to_events
from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.records import ReceiverOptions

# every test twice: JSON fields read natively, and by Python (conftest.py)
pytestmark = pytest.mark.usefixtures("json_readers")

TESTDATA = Path(__file__).parents[2].parent / "shared" / "testdata"
CASES = json.loads((TESTDATA / "eventbridge" / "cases.json").read_text())
STRATUS = TESTDATA / "cloudtrail" / "stratus-red-team-detonation-logs"
PACK = Path(__file__).parents[2] / "src" / "ecsguard" / "detect" / "pack" / "ecs-operations.yaml"


def store(receiver: str, data: bytes) -> pa.RecordBatch:
    import ecsguard.logs.receivers.cloudtrail
    import ecsguard.logs.receivers.ecs_events  # noqa: F401

    return RECEIVERS.get(receiver)(data, ReceiverOptions()).batch


@pytest.fixture(scope="module")
def trail_batch() -> pa.RecordBatch:
    records: list[Any] = []
    for path in sorted(STRATUS.glob("*.json")):
        doc = json.loads(path.read_text())
        records.extend(doc if isinstance(doc, list) else doc.get("Records", []))
    return store("cloudtrail", json.dumps({"Records": records}).encode())


def odd_events() -> pa.RecordBatch:
    """Dotted keys, arrays of objects, nulls, a detail that is not an object."""
    base = {"version": "0", "source": "test", "account": "1", "region": "r", "resources": []}
    events = [
        {
            **base,
            "id": "1",
            "detail-type": "a",
            "time": "2024-01-02T03:04:05Z",
            "detail": {
                "a.b": 1,
                "a": {"b": 2, "c": {"d.e": "x"}},
                "list": [{"x": 1}, {"x": [2, 3]}, "s", [{"x": 4}]],
                "n": None,
                "empty": [],
                "obj": {},
            },
            "resources": ["arn:1", {"k": "v"}],
        },
        {**base, "id": "2", "detail-type": "b", "time": "2024-01-02T03:04:06Z", "detail": ["x"]},
        {**base, "id": "3", "detail-type": "c", "time": "2024-01-02T03:04:07Z", "detail": "text"},
    ]
    return store("ecs_events", json.dumps(events).encode())


def expected_leaves(event: dict[str, Any], path: str) -> list[str]:
    leaves, _ = flatten(event)
    return sorted(json.dumps(value) for value, _ in leaves.get(path, []))


def view_leaves(view: RowView, path: str, row: int) -> list[str] | None:
    kind = view.kind(path)
    if kind is None:
        return None
    if kind == "absent":
        values: list[Any] = []
    elif kind == "column":
        value = view.column(path)[row]
        values = [] if value is None else [value]
    else:
        values = view.leaves(path, row)
    return sorted(json.dumps(value) for value in values)


def all_paths(event: dict[str, Any]) -> set[str]:
    leaves, _ = flatten(event)
    return set(leaves)


EXTRA = (
    "version",
    "id",
    "time",
    "source",
    "detail-type",
    "account",
    "region",
    "resources",
    "resources.k",
    "detail",
    "detail.nothing",
    "detail.a.b",
    "detail.a.c.d.e",
    "detail.list.x",
    "detail.userIdentity",
    "detail.userIdentity.type",
    "detail.userIdentity.sessionContext.attributes.mfaAuthenticated",
    "detail.requestParameters",
    "detail.responseElements",
    "detail.eventTime",
    "detail.resources.ARN",
    "detail.additionalEventData.MFAUsed",
    "id.x",
    "detail.eventName.x",
    "unknown",
)


def view_batch(table: str, trail_batch: pa.RecordBatch) -> tuple[pa.RecordBatch, str]:
    """A batch to read views over, and its table: the EventBridge cases' events, CloudTrail
    records, or events with odd values."""
    if table == "cloudtrail":
        return trail_batch, "cloudtrail"
    if table == "odd":
        return odd_events(), "events"
    return store("ecs_events", json.dumps([case["event"] for case in CASES]).encode()), "events"


@pytest.mark.parametrize("table", ["events", "cloudtrail", "odd"])
def test_the_view_gives_the_leaves_flatten_finds(table: str, trail_batch: pa.RecordBatch) -> None:
    batch, name = view_batch(table, trail_batch)
    events = to_events(name, batch)
    view = RowView(name, batch)
    checked = 0
    for row, event in enumerate(events):
        for path in sorted(all_paths(event) | set(EXTRA)):
            got = view_leaves(view, path, row)
            if got is not None:
                assert got == expected_leaves(event, path), (row, path)
                checked += 1
    assert checked > len(events) * len(EXTRA) // 2


@pytest.mark.parametrize("table", ["events", "cloudtrail", "odd"])
@pytest.mark.parametrize("sliced", [False, True])
def test_column_codes_number_the_column_values(
    table: str, sliced: bool, trail_batch: pa.RecordBatch
) -> None:
    """`codes` (what the native narrowing reads a column path by) gives every row the value
    `column` gives it, from store columns (Arrow's dictionaries, nulls included) and derived
    ones alike, on a slice too."""
    batch, name = view_batch(table, trail_batch)
    if sliced:
        batch = batch.slice(1, batch.num_rows - 2)
    checked = 0
    for path in sorted(
        {p for event in to_events(name, batch) for p in all_paths(event)} | set(EXTRA)
    ):
        view = RowView(name, batch)
        if view.kind(path) != "column":
            continue
        values, codes = view.codes(path)
        assert [values[code] for code in codes] == view.column(path), path
        assert view.codes(path) == (values, codes)  # kept for the batch
        checked += 1
    assert checked >= 5


def test_the_view_refuses_other_tables() -> None:
    with pytest.raises(ValueError, match="no EventBridge shape"):
        RowView("logs", pa.record_batch({"message": ["x"]}))


def sound(patterns: list[Any], table: str, batch: pa.RecordBatch) -> int:
    """Asserts no matching row is dropped, for the patterns together and each alone; returns
    how many rows the set drops."""
    events = to_events(table, batch)
    together = PatternSet({i: p for i, p in enumerate(patterns)})
    kept = set(together.candidates(RowView(table, batch)))
    for row, event in enumerate(events):
        if together.match_all(event):
            assert row in kept, (row, together.match_all(event))
    for pattern in patterns:
        alone = PatternSet({0: pattern})
        kept_alone = set(alone.candidates(RowView(table, batch)))
        for row, event in enumerate(events):
            if alone.match_all(event):
                assert row in kept_alone, (pattern, event)
    return len(events) - len(kept)


def test_no_eventbridge_case_that_matches_is_dropped() -> None:
    matched = 0
    for case in CASES:
        batch = store("ecs_events", json.dumps([case["event"]]).encode())
        pattern = compile_pattern(case["pattern"])
        sound([pattern], "events", batch)
        matched += pattern.matches(to_events("events", batch)[0])
    assert matched > 20  # the cases exercise matching rows, not only dropped ones


def test_the_shipped_pack_over_cloudtrail_drops_rows_but_no_match(
    trail_batch: pa.RecordBatch,
) -> None:
    import yaml

    doc = yaml.safe_load(PACK.read_text())
    rules = doc["rules"] if isinstance(doc, dict) else doc
    patterns = [
        compile_pattern(rule["event_pattern"]["pattern"])
        for rule in rules
        if rule.get("type") == "event_pattern"
    ]
    assert len(patterns) > 5
    dropped = sound(patterns, "cloudtrail", trail_batch)
    assert dropped > trail_batch.num_rows // 2  # most Stratus records match no ECS rule


def test_exists_false_and_anything_but_keep_what_array_consistency_may_match() -> None:
    batch = odd_events()
    patterns = [
        compile_pattern({"detail": {"list": {"x": [{"exists": False}]}}}),
        compile_pattern({"detail": {"list": {"x": [{"anything-but": 1}]}}}),
        compile_pattern({"detail": {"n": [None], "a.b": [1]}}),
        compile_pattern({"detail": {"a": {"b": [{"numeric": [">", 1]}]}}}),
        compile_pattern({"detail-type": ["b"], "detail": ["x"]}),
        compile_pattern({"resources": [{"prefix": "arn:"}]}),
    ]
    sound(patterns, "events", batch)
    kept = PatternSet({0: patterns[4]}).candidates(RowView("events", batch))
    assert kept == [1]  # detail-type alone rules out the other rows


def test_a_set_without_tests_keeps_every_row() -> None:
    batch = odd_events()
    assert Prefilter([]).survivors(RowView("events", batch)) == [0, 1, 2]


def test_the_value_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import ecsguard.detect.eventpattern.prefilter as prefilter

    monkeypatch.setattr(prefilter, "CACHE_LIMIT", 1)
    pattern = compile_pattern({"id": ["2"], "detail": {"a": {"b": [2]}}})
    found = PatternSet({0: pattern})
    data = odd_events()
    for row in (0, 2, 0, 2, 0):  # one id per batch (ids 1 and 3; "2" never arrives)
        assert found.candidates(RowView("events", data.slice(row, 1))) == []
    index = found._index
    assert index is not None and index.prefilter is not None
    ids = index.prefilter._cache[("id", "column")]
    assert len(ids) == 1  # emptied when over the limit, then refilled
    assert found.candidates(RowView("events", data)) == []  # row 1 has id 2 but no detail.a.b


# --- the batch path (match_view: branch masks, exact matching where they cannot decide) ------
# against every pattern alone on every row's event, as the naive loop evaluates them

WORDS = [
    "STOPPED",
    "stopped",
    "Stopped",
    "aws.ecs",
    "",
    "10.0.0.7",
    "a.b",
    "Ünïcode",
    "日本",
    "137",
]
SCALARS = st.one_of(
    st.sampled_from(WORDS),
    st.sampled_from([0, 1, 137, 2.5, -7, 1e10]),
    st.booleans(),
    st.none(),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3))
KEYS = ["a", "b", "c", "a.b", "list"]
DETAILS = st.recursive(
    st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=4),
    lambda inner: st.one_of(
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
        st.lists(inner, max_size=3),
    ),
    max_leaves=12,
)
PATHS = ["detail.a", "detail.b", "detail.a.b", "detail.a.c", "detail.list.a", "detail.list.b"]


def _test() -> st.SearchStrategy[Any]:
    word = st.sampled_from(WORDS)
    number = st.sampled_from([0, 1, 137, 2.5])
    return st.one_of(
        SCALARS,
        st.builds(lambda w: {"prefix": w}, word),
        st.builds(lambda w: {"prefix": {"equals-ignore-case": w}}, word),
        st.builds(lambda w: {"suffix": w}, word),
        st.builds(lambda w: {"equals-ignore-case": w}, word),
        st.builds(lambda w: {"wildcard": f"*{w}*"}, st.sampled_from(["S", "o", "日"])),
        st.builds(lambda n: {"numeric": [">", n]}, number),
        st.builds(lambda w: {"anything-but": w}, word),
        st.builds(lambda n: {"anything-but": [n]}, number),
        st.builds(lambda b: {"exists": b}, st.booleans()),
        st.just({"cidr": "10.0.0.0/24"}),
    )


def _nested(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, value in flat.items():
        node = out
        *parents, last = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                return out  # a path under another's value: leave it out
        if isinstance(node.get(last), dict):
            continue
        node[last] = value
    return out


PATTERNS = st.dictionaries(
    st.sampled_from([*PATHS, "source", "detail-type"]),
    st.lists(_test(), min_size=1, max_size=3),
    min_size=1,
    max_size=3,
).map(_nested)


def _compiles(pattern: dict[str, Any]) -> Any:
    try:
        return compile_pattern(pattern)
    except InvalidPatternError:
        return None


def agrees(patterns: list[Any], table: str, batch: pa.RecordBatch) -> int:
    """match_view's rows and ids against each pattern alone on each event; the rows matched."""
    events = to_events(table, batch)
    together = PatternSet({i: p for i, p in enumerate(patterns)})
    found = together.match_view(RowView(table, batch), lambda rows: [events[row] for row in rows])
    expected = []
    for row, event in enumerate(events):
        ids = [i for i, pattern in enumerate(patterns) if pattern.matches(event)]
        if ids:
            expected.append((row, ids))
    assert found == expected
    return len(expected)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(PATTERNS, min_size=1, max_size=8),
    st.lists(
        st.tuples(DETAILS, st.sampled_from(["aws.ecs", "aws.ec2"]), st.sampled_from(["A", "B"])),
        min_size=1,
        max_size=6,
    ),
)
def test_the_batch_path_agrees_with_each_pattern_alone(
    patterns: list[dict[str, Any]], rows: list[tuple[Any, str, str]]
) -> None:
    compiled = [p for p in map(_compiles, patterns) if p is not None]
    base = {"version": "0", "account": "1", "region": "r", "time": "2024-01-02T03:04:05Z"}
    events = [
        {**base, "id": str(i), "source": source, "detail-type": kind, "detail": detail}
        for i, (detail, source, kind) in enumerate(rows)
    ]
    agrees(compiled, "events", store("ecs_events", json.dumps(events).encode()))


def test_the_batch_path_agrees_on_the_eventbridge_cases_and_odd_rows() -> None:
    batch = store("ecs_events", json.dumps([case["event"] for case in CASES]).encode())
    patterns = [compile_pattern(case["pattern"]) for case in CASES]
    assert agrees(patterns, "events", batch) > 20
    odd = [
        compile_pattern({"detail": {"list": {"x": [{"exists": False}]}}}),
        compile_pattern({"detail": {"list": {"x": [1]}, "a.b": [1]}}),
        compile_pattern({"detail": {"n": [None], "a.b": [1]}}),
        compile_pattern({"detail": {"a": {"b": [2], "c": {"d.e": ["x"]}}}}),
        compile_pattern({"detail-type": ["b"], "detail": ["x"]}),
        compile_pattern({"resources": [{"prefix": "arn:"}], "detail": {"a.b": [1]}}),
    ]
    assert agrees(odd, "events", odd_events()) > 0
    # a detail that is an array: two fields from different elements do not match together
    base = {"version": "0", "source": "s", "detail-type": "t", "account": "1", "region": "r"}
    split = [
        {**base, "id": "1", "detail": [{"a": "x"}, {"b": "y"}]},
        {**base, "id": "2", "detail": [{"a": "x", "b": "y"}]},
        {**base, "id": "3", "detail": {"a": "x", "b": ["y", "z"]}},
    ]
    together = [compile_pattern({"detail": {"a": ["x"], "b": ["y"]}})]
    assert agrees(together, "events", store("ecs_events", json.dumps(split).encode())) == 2


def test_the_batch_path_agrees_over_cloudtrail(trail_batch: pa.RecordBatch) -> None:
    import yaml

    doc = yaml.safe_load(PACK.read_text())
    rules = doc["rules"] if isinstance(doc, dict) else doc
    patterns = [
        compile_pattern(rule["event_pattern"]["pattern"])
        for rule in rules
        if rule.get("type") == "event_pattern"
    ]
    patterns += [
        compile_pattern(
            {"detail": {"userIdentity": {"type": ["IAMUser"], "arn": [{"exists": True}]}}}
        ),
        compile_pattern(
            {"detail": {"eventName": [{"prefix": "Get"}], "errorCode": [{"exists": False}]}}
        ),
        compile_pattern(
            {
                "source": ["aws.iam"],
                "detail": {"requestParameters": {"userName": [{"anything-but": ""}]}},
            }
        ),
        compile_pattern({"detail": {"eventName": [{"equals-ignore-case": "getcalleridentity"}]}}),
    ]
    assert agrees(patterns, "cloudtrail", trail_batch) > 0
