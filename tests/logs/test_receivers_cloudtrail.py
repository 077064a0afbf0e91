from __future__ import annotations

import gzip
import json
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.receivers.cloudtrail import parse
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
