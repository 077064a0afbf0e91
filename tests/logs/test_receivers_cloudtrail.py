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
from ecsguard.logs.receivers.cloudtrail import _fast, _general, parse
from ecsguard.logs.records import ReceiverOptions
from ecsguard.logs.schema import CLOUDTRAIL

DATA = (
    Path(__file__).parents[2].parent
    / "shared"
    / "testdata"
    / "cloudtrail"
    / "stratus-red-team-detonation-logs"
)
OPTS = ReceiverOptions(input_name="trail.json", ingest_time_us=1_800_000_000_000_000)


def files() -> list[Path]:
    if not DATA.is_dir():
        pytest.skip(f"public test data not found at {DATA}")
    return sorted(p for p in DATA.glob("aws.*.json"))


def test_registered() -> None:
    assert RECEIVERS.get("cloudtrail") is parse


def test_every_stratus_record_converted() -> None:
    index = (
        {e["file"]: e["n_records"] for e in json.loads((DATA / "index.json").read_text())}
        if DATA.is_dir()
        else {}
    )
    total = 0
    for path in files():
        records = json.loads(path.read_bytes())
        table, batch, problems, _ = parse(path.read_bytes(), OPTS)
        assert table == "cloudtrail" and batch.schema == CLOUDTRAIL
        assert problems == [], path.name
        assert batch.num_rows == len(records) == index.get(path.name, len(records)), path.name
        assert batch.column("event_id").to_pylist() == [r["eventID"] for r in records]
        assert batch.column("event_name").null_count == 0
        assert batch.column("time").null_count == 0
        total += batch.num_rows
    assert total == sum(index.values())


def test_columns_of_one_record() -> None:
    path = DATA / "aws.persistence.iam-backdoor-role.json"
    if not path.exists():
        pytest.skip(f"public test data not found at {path}")
    row = parse(path.read_bytes(), OPTS).batch.to_pylist()[0]
    assert row["event_source"] == "iam.amazonaws.com"
    assert row["event_name"] == "UpdateAssumeRolePolicy"
    assert row["identity_arn"] == "arn:aws:iam::751203476945:user/christophe"
    assert row["access_key_id"] == "AKIAMUV7B57OZM0RV05D"
    assert row["account"] == "751203476945" and row["read_only"] is False
    assert json.loads(row["request_parameters"])["roleName"] == "stratus-red-team-backdoor-r-role"
    assert row["response_elements"] is None


def test_records_envelope_gzip_and_session_issuer() -> None:
    record = {
        "eventID": "e1",
        "eventTime": "2024-01-01T00:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "readOnly": "true",
        "errorCode": "AccessDenied",
        "resources": [{"ARN": "arn:aws:s3:::b/k"}],
        "userIdentity": {
            "type": "AssumedRole",
            "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::1:role/r"}},
        },
    }
    body = gzip.compress(orjson.dumps({"Records": [record, "junk"]}))
    _, batch, problems, _ = parse(body, OPTS)
    row = batch.to_pylist()[0]
    assert batch.num_rows == 1 and [p.kind for p in problems] == ["bad_record"]
    assert row["identity_arn"] == "arn:aws:iam::1:role/r" and row["read_only"] is True
    assert row["error_code"] == "AccessDenied" and json.loads(row["resources"])[0]["ARN"]


@pytest.mark.parametrize(
    ("data", "kind"),
    [(b"\x1f\x8bbad", "invalid_gzip"), (b"[1", "invalid_json"), (b"7", "invalid_json")],
)
def test_bad_files_are_problems(data: bytes, kind: str) -> None:
    _, batch, problems, _ = parse(data, OPTS)
    assert batch.num_rows == 0 and [p.kind for p in problems] == [kind]
    assert "trail.json" in str(problems[0])


def test_objects_that_are_not_events_are_reported_not_stored() -> None:
    from ecsguard.logs.receivers import RECEIVERS
    from ecsguard.logs.records import ReceiverOptions

    data = b'[{"technique": "aws.defense-evasion.cloudtrail-stop"}]'
    parsed = RECEIVERS.get("cloudtrail")(data, ReceiverOptions(input_name="index.json"))
    assert parsed.batch.num_rows == 0
    assert [p.kind for p in parsed.problems] == ["bad_record"]
    assert "index.json record 1" in str(parsed.problems[0])


# --------------------------------------------------------------------------- property tests


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)
RECORD_KEYS = st.sampled_from(
    ["eventTime", "eventID", "eventSource", "eventName", "userIdentity", "readOnly", "resources"]
)


@given(st.binary())
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    parsed = parse(data, OPTS)
    assert parsed.batch.schema == CLOUDTRAIL
    parse(gzip.compress(data, mtime=0), OPTS)


@settings(max_examples=150)
@given(st.lists(st.dictionaries(RECORD_KEYS, JSON_VALUES), max_size=5))
def test_records_of_any_shape_are_stored_or_reported(records: list[dict[str, object]]) -> None:
    parsed = parse(orjson.dumps({"Records": records}), OPTS)
    # every record is a row or a named problem (a row may carry a problem too): nothing vanishes
    kept_out = [p for p in parsed.problems if "ingest time used" not in p.detail]
    assert parsed.batch.num_rows + len(kept_out) == len(records)


# ------------------------------------------- the msgspec path gives the general path's batch


JSON_COLUMNS = (
    "request_parameters",
    "response_elements",
    "resources",
    "additional_event_data",
    "user_identity",
)

IDENTITY = st.fixed_dictionaries(
    {},
    optional={
        "type": TEXTS,
        "arn": TEXTS,
        "accessKeyId": TEXTS,
        "accountId": TEXTS,
        "principalId": TEXTS,
        "sessionContext": st.fixed_dictionaries(
            {}, optional={"sessionIssuer": st.fixed_dictionaries({}, optional={"arn": TEXTS})}
        ),
    },
)
EVENT = st.fixed_dictionaries(
    {
        "eventID": TEXTS,
        "eventTime": st.sampled_from(["2026-11-29T17:47:29Z", "2026-11-29T17:47:29.123Z", "x"]),
        "eventName": TEXTS,
    },
    optional={
        "eventVersion": st.just("1.09"),
        "eventSource": TEXTS,
        "awsRegion": TEXTS,
        "sourceIPAddress": TEXTS,
        "userAgent": TEXTS,
        "recipientAccountId": TEXTS,
        "errorCode": TEXTS,
        "errorMessage": TEXTS,
        "eventType": TEXTS,
        "readOnly": st.booleans() | st.sampled_from(["true", "False", "maybe"]),
        "requestParameters": NESTED,
        "responseElements": NESTED,
        "resources": st.lists(st.fixed_dictionaries({"ARN": TEXTS}), max_size=2),
        "additionalEventData": NESTED,
        "userIdentity": st.none() | IDENTITY,
        "tlsDetails": NESTED,
    },
)


@settings(max_examples=300)
@given(
    st.lists(EVENT, max_size=4),
    st.sampled_from(sorted(LAYOUTS)),
    st.booleans(),
)
def test_the_msgspec_path_gives_the_general_batch(
    records: list[dict[str, object]], layout: str, envelope: bool
) -> None:
    data = LAYOUTS[layout]({"Records": records} if envelope else records)
    fast, general = _fast(data, OPTS), _general(data, OPTS)
    well_formed = all(
        r["eventID"] and r["eventTime"] != "x" and (r["eventName"] or r.get("eventSource"))
        for r in records
    )
    if not well_formed:  # the general path reports what is wrong
        assert fast is None
        return
    assert fast is not None and fast.problems == general.problems == []
    same_batches(fast.batch, general.batch, JSON_COLUMNS, exact=not has_float(records))


@pytest.mark.parametrize(
    "data",
    [
        # invalid UTF-8 in a value the struct skips: orjson refuses the whole file
        b'{"Records": [{"eventID": "a", "eventTime": "2026-11-29T17:47:29Z", "eventName": "X",'
        b' "requestID": "\xff"}]}',
        # a key the table keeps as text holding a number
        b'[{"eventID": "a", "eventTime": "2026-11-29T17:47:29Z", "eventName": 7}]',
        # one record without an id: hashed by the general path
        b'[{"eventTime": "2026-11-29T17:47:29Z", "eventName": "X"}]',
        b'{"Records": [{"eventID": "a", "eventTime": "2026-11-29T17:47:29Z", "eventName": "X"',
        b'{"eventID": "a", "eventTime": "2026-11-29T17:47:29Z", "eventName": "X"}',
    ],
)
def test_other_files_go_the_general_path(data: bytes) -> None:
    assert _fast(data, OPTS) is None
    assert parse(data, OPTS) == _general(data, OPTS)


def test_escaped_texts_read_as_the_general_path_writes_them() -> None:
    record = {
        "eventID": "a",
        "eventTime": "2026-11-29T17:47:29Z",
        "eventName": "PutObject",
        "requestParameters": {"key": 'caf\u00e9 "quoted" a/b\n'},
        "responseElements": {"size": 1.5},
    }
    data = json.dumps([record]).encode().replace(b"/", b"\\/").replace(b"1.5", b"1.50")
    row = parse(data, OPTS).batch.to_pylist()[0]
    # the escapes are read, so a keyword search for the text finds it
    assert row["request_parameters"] == '{"key":"café \\"quoted\\" a/b\\n"}'
    # a number keeps the sender's spelling, and its value
    assert row["response_elements"] == '{"size":1.50}'


def test_a_number_orjson_refuses_does_not_lose_the_file() -> None:
    # msgspec skips the number; orjson, which reads the escape, refuses it: the text is kept as
    # sent, and the records are stored
    data = (
        b'[{"eventID": "a", "eventTime": "2026-11-29T17:47:29Z", "eventName": "X",'
        b' "requestParameters": {"key": "caf\\u00e9", "size": 1e400}}]'
    )
    row = parse(data, OPTS).batch.to_pylist()[0]
    assert row["request_parameters"] == '{"key":"caf\\u00e9","size":1e400}'
