"""Sigma semantics over CloudTrail records: modifiers, conditions, unsupported rules, robustness.

Records go through the real CloudTrail receiver into a batch, so the field mapping to the
table's columns is exercised end to end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest import mock

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecsguard.detect.sigma import SigmaProblem, SigmaSpec, compile_document, evaluate, load_sigma
from ecsguard.detect.sigma.fields import Record
from ecsguard.logs.receivers.cloudtrail import parse
from ecsguard.logs.records import ReceiverOptions, build_batch
from ecsguard.logs.schema import CLOUDTRAIL

SIGMAHQ = Path(__file__).parents[2].parent / "shared" / "testdata" / "sigma"


def sigma(detection: dict[str, Any], **extra: Any) -> SigmaSpec | SigmaProblem:
    doc = {
        "title": "test rule",
        "logsource": {"product": "aws", "service": "cloudtrail"},
        "detection": detection,
        **extra,
    }
    return compile_document(doc)


def rule(detection: dict[str, Any], **extra: Any) -> SigmaSpec:
    spec = sigma(detection, **extra)
    assert isinstance(spec, SigmaSpec), str(spec)
    return spec


def event(**fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "eventTime": "2024-07-31T13:06:24Z",
        "eventSource": "cloudtrail.amazonaws.com",
        "eventName": "StopLogging",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "10.1.2.3",
        "userAgent": "aws-cli/2.15 Python/3.11",
        "userIdentity": {
            "type": "IAMUser",
            "arn": "arn:aws:iam::123456789012:user/christophe",
            "accessKeyId": "AKIAEXAMPLE",
        },
        "recipientAccountId": "123456789012",
        "readOnly": False,
        "requestParameters": {"name": "main-trail"},
    }
    for key, value in fields.items():
        if value is None:
            record.pop(key, None)
        else:
            record[key] = value
    return record


def fired(spec: SigmaSpec, *records: dict[str, Any]) -> list[int]:
    batch = parse(orjson.dumps(list(records)), ReceiverOptions()).batch
    return spec.matcher.rows(batch)


def matches(detection: dict[str, Any], record: dict[str, Any]) -> bool:
    return fired(rule(detection), record) == [0]


USER = {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/Christophe"}

MODIFIER_CASES = [
    # (detection selection, record fields, expected)
    ({"eventName": "stoplogging"}, {}, True),  # case-insensitive by default
    ({"eventName|cased": "stoplogging"}, {}, False),
    ({"eventName|cased": "StopLogging"}, {}, True),
    ({"eventName": "Stop*"}, {}, True),
    ({"eventName": "StopLoggin?"}, {}, True),
    ({"eventName": "Stop?"}, {}, False),
    ({"eventName": "*"}, {}, True),
    ({"userAgent": "a\\*b"}, {"userAgent": "a*b"}, True),  # escaped wildcard is literal
    ({"userAgent": "a\\*b"}, {"userAgent": "axb"}, False),
    ({"userAgent|contains": "PYTHON/"}, {}, True),
    ({"userAgent|contains": "boto3"}, {}, False),
    ({"userAgent|startswith": "AWS-CLI"}, {}, True),
    ({"userAgent|startswith": "Python"}, {}, False),
    ({"userAgent|endswith": "python/3.11"}, {}, True),
    ({"userAgent|endswith": "aws-cli"}, {}, False),
    ({"userAgent|contains|all": ["aws-cli", "python"]}, {}, True),
    ({"userAgent|contains|all": ["aws-cli", "boto3"]}, {}, False),
    ({"eventName": ["DeleteTrail", "StopLogging"]}, {}, True),  # a list is OR
    ({"eventName": ["DeleteTrail", "UpdateTrail"]}, {}, False),
    ({"userIdentity.arn|re": ":user/Chr.*$"}, {"userIdentity": USER}, True),
    ({"userIdentity.arn|re": ":user/chr.*$"}, {"userIdentity": USER}, False),  # re is cased
    ({"userIdentity.arn|re|i": ":user/chr.*$"}, {"userIdentity": USER}, True),
    ({"userIdentity.arn|re": "^:user"}, {"userIdentity": USER}, False),  # anchors anchor
    ({"sourceIPAddress|cidr": "10.0.0.0/8"}, {}, True),
    ({"sourceIPAddress|cidr": "192.168.0.0/16"}, {}, False),
    ({"sourceIPAddress|cidr": "2001:db8::/32"}, {"sourceIPAddress": "2001:db8::1"}, True),
    ({"sourceIPAddress|cidr": "10.0.0.0/8"}, {"sourceIPAddress": "AWS Internal"}, False),
    ({"requestParameters.name|exists": True}, {}, True),
    ({"requestParameters.name|exists": False}, {}, False),
    ({"requestParameters.other|exists": False}, {}, True),
    ({"errorCode|exists": True}, {}, False),
    ({"errorCode": None}, {}, True),  # null: the field is absent
    ({"errorCode": None}, {"errorCode": "AccessDenied"}, False),
    ({"requestParameters.data|base64": "hello"}, {"requestParameters": {"data": "aGVsbG8="}}, True),
    ({"requestParameters.data|base64": "hello"}, {"requestParameters": {"data": "hello"}}, False),
    (
        {"requestParameters.data|base64offset|contains": "secret"},
        {"requestParameters": {"data": "eHhzZWNyZXR4eA=="}},  # base64("xxsecretxx")
        True,
    ),
    (
        {"requestParameters.commands|windash|contains": " -enc "},
        {"requestParameters": {"commands": ["powershell /enc AAAA"]}},
        True,
    ),
    (
        {"requestParameters.commands|windash|contains": " -enc "},
        {"requestParameters": {"commands": ["powershell enc AAAA"]}},
        False,
    ),
    ({"requestParameters.maxResults|gt": 5}, {"requestParameters": {"maxResults": 6}}, True),
    ({"requestParameters.maxResults|gt": 5}, {"requestParameters": {"maxResults": 5}}, False),
    ({"requestParameters.maxResults|gte": 5}, {"requestParameters": {"maxResults": "5"}}, True),
    ({"requestParameters.maxResults|lt": 5}, {"requestParameters": {"maxResults": 4.5}}, True),
    ({"requestParameters.maxResults|lte": 5}, {"requestParameters": {"maxResults": 6}}, False),
    ({"requestParameters.maxResults|lt": 5}, {"requestParameters": {"maxResults": "x"}}, False),
    ({"requestParameters.maxResults|lt": 5}, {"requestParameters": {"maxResults": True}}, False),
    ({"eventName|neq": "StopLogging"}, {}, False),
    ({"eventName|neq": "DeleteTrail"}, {}, True),
    (
        {"userIdentity.arn|fieldref|endswith": "requestParameters.userName"},
        {"userIdentity": USER, "requestParameters": {"userName": "christophe"}},
        True,
    ),
    (
        {"userIdentity.arn|fieldref": "requestParameters.userName"},
        {"userIdentity": USER, "requestParameters": {"userName": "christophe"}},
        False,
    ),
    ({"eventTime|hour": 13}, {}, True),
    ({"eventTime|year": 2023}, {}, False),
    ({"readOnly": False}, {}, True),  # a boolean column
    ({"requestParameters.enable": "false"}, {"requestParameters": {"enable": False}}, True),
    ({"requestParameters.port": 22}, {"requestParameters": {"port": 22}}, True),
    ({"requestParameters.port": 22}, {"requestParameters": {"port": "22"}}, True),
    ({"requestParameters.port": 22}, {"requestParameters": {"port": 2222}}, False),
    ({"requestParameters|contains": "MAIN-TRAIL"}, {}, True),  # a whole JSON object as text
    (
        # a path through a list of objects: any element
        {"requestParameters.containerDefinitions.command|contains": "$AWS_CONTAINER_CRED"},
        {
            "requestParameters": {
                "containerDefinitions": [
                    {"command": ["sh"]},
                    {"command": ["curl", "169.254.170.2$AWS_CONTAINER_CREDS"]},
                ]
            }
        },
        True,
    ),
    ({"requestParameters.a.b": "x"}, {"requestParameters": {"a.b": "x"}}, True),  # dotted key
    (
        {"resources.ARN|endswith": ":trail/main"},
        {"resources": [{"ARN": "arn:aws:cloudtrail:us-east-1:1:trail/main"}]},
        True,
    ),
    ({"responseElements": None}, {}, True),
    ({"userIdentity.type": "iamuser", "eventName": "StopLogging"}, {}, True),  # a map is AND
    ({"userIdentity.type": "Root", "eventName": "StopLogging"}, {}, False),
]


@pytest.mark.parametrize(("selection", "fields", "expected"), MODIFIER_CASES)
def test_modifier(selection: dict[str, Any], fields: dict[str, Any], expected: bool) -> None:
    assert matches({"selection": selection, "condition": "selection"}, event(**fields)) is expected


def test_keywords_search_every_kept_text() -> None:
    detection = {"keywords": ["evil-tool", "nothing-here"], "condition": "keywords"}
    assert matches(detection, event(userAgent="Evil-Tool/1.0"))
    assert matches(detection, event(requestParameters={"script": "run evil-tool now"}))
    assert not matches(detection, event())
    cased = {"keywords": {"|cased": "Evil"}, "condition": "keywords"}
    assert matches(cased, event(userAgent="Evil/1")) and not matches(cased, event(userAgent="evil"))
    number = {"keywords": [4711], "condition": "keywords"}
    assert matches(number, event(requestParameters={"port": 4711}))
    with_time = {"k": ["aws-cli"], "t": {"eventTime|hour": 13}, "condition": "k and t"}
    assert matches(with_time, event()) and not matches(with_time, event(userAgent="console"))


CONDITIONS = {
    "selection_name": {"eventName": "StopLogging"},
    "selection_source": {"eventSource": "cloudtrail.amazonaws.com"},
    "filter_root": {"userIdentity.type": "Root"},
    "filter_ip": {"sourceIPAddress|cidr": "10.0.0.0/8"},
}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("selection_name and not filter_root", True),
        ("selection_name and not filter_ip", False),
        ("1 of selection_*", True),
        ("all of selection_*", True),
        ("all of them", False),
        ("1 of them", True),
        ("1 of filter_*", True),
        ("all of filter_*", False),
        ("(filter_root or filter_ip) and selection_name", True),
        ("filter_root or (filter_ip and not selection_source)", False),
        ("not 1 of filter_*", False),
        (["filter_root", "selection_name"], True),  # several conditions: any
    ],
)
def test_condition(condition: str | list[str], expected: bool) -> None:
    assert matches({**CONDITIONS, "condition": condition}, event()) is expected


def test_a_list_of_maps_is_or() -> None:
    detection = {
        "selection": [{"eventName": "DeleteTrail"}, {"userAgent|contains": "aws-cli"}],
        "condition": "selection",
    }
    assert matches(detection, event())
    assert not matches(detection, event(userAgent="console"))


def test_prefilter_and_full_condition_agree_over_a_mixed_batch() -> None:
    spec = rule(
        {
            "selection": {"eventSource": "iam.amazonaws.com", "eventName|startswith": "Create"},
            "detail": {"requestParameters.userName|contains": "admin"},
            "condition": "selection and detail",
        }
    )
    records = [
        event(
            eventSource="iam.amazonaws.com",
            eventName="CreateUser",
            requestParameters={"userName": "eviladmin"},
        ),
        event(
            eventSource="iam.amazonaws.com",
            eventName="CreateUser",
            requestParameters={"userName": "bob"},
        ),
        event(
            eventSource="s3.amazonaws.com",
            eventName="CreateBucket",
            requestParameters={"userName": "admin"},
        ),
        event(
            eventSource="iam.amazonaws.com",
            eventName="DeleteUser",
            requestParameters={"userName": "admin"},
        ),
        event(
            eventSource="iam.amazonaws.com",
            eventName="CreateAccessKey",
            requestParameters={"userName": "admin2"},
        ),
    ]
    assert spec.compiled.pin is not None and spec.compiled.pin.columns == (
        "event_name",
        "event_source",
    )
    assert fired(spec, *records) == [0, 4]
    batch = parse(orjson.dumps(records), ReceiverOptions()).batch
    assert spec.matcher.candidates(batch) == [0, 1, 4]  # the prefilter alone
    assert fired(spec, *records[1:4]) == []
    assert fired(spec, *(records * 3)) == [0, 4, 5, 9, 10, 14]  # the memo across batches


def test_a_rule_pinning_nothing_reads_every_row() -> None:
    spec = rule({"keywords": ["admin"], "condition": "keywords"})
    assert spec.compiled.pin is None
    assert fired(spec, event(), event(requestParameters={"x": "admin"})) == [1]


def test_a_condition_on_plain_columns_is_decided_by_the_prefilter_alone() -> None:
    spec = rule({"selection": {"userAgent|contains": "trufflehog"}, "condition": "selection"})
    assert spec.compiled.pin is not None and spec.compiled.pin.exact
    assert fired(spec, event(), event(userAgent="TruffleHog"), event()) == [1]


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (
            {
                "detection": {
                    "sel": {"eventName": "x"},
                    "condition": "sel | count() by userAgent > 5",
                }
            },
            "aggregation `sel | count() by userAgent > 5` is not supported",
        ),
        (
            {"detection": {"sel": {"eventName": "x"}, "timeframe": "5m", "condition": "sel"}},
            "`timeframe: 5m`",
        ),
        ({"detection": {"sel": {"eventName|bogus": "x"}, "condition": "sel"}}, "bogus"),
        (
            {
                "detection": {
                    "sel": {"vpcEndpointId": "x", "serviceEventDetails": "y"},
                    "condition": "sel",
                }
            },
            "does not keep: serviceEventDetails, vpcEndpointId",
        ),
        (
            {"detection": {"sel": {"sourceIPAddress|expand": "%office%"}, "condition": "sel"}},
            "placeholder %office%",
        ),
        (
            {"detection": {"sel": {"userAgent|re": "(a)\\1"}, "condition": "sel"}},
            "in linear time: backreferences and look-arounds are refused",
        ),
        (
            {"detection": {"sel": {"userAgent|re": "(?=x)y"}, "condition": "sel"}},
            "in linear time: backreferences and look-arounds are refused",
        ),
        (
            {
                "logsource": {"product": "windows", "category": "process_creation"},
                "detection": {"sel": {"Image": "x"}, "condition": "sel"},
            },
            "logsource product=windows service=None is not AWS CloudTrail",
        ),
        ({"detection": {"sel": {"eventName": "x"}, "condition": "nope"}}, "nope"),
        ({"detection": {"sel": {"eventName": "x"}}}, "condition"),
        ({"correlation": {"type": "event_count"}}, "correlation rules"),
        ({"filter": {"rules": []}}, "Sigma filters are not applied"),
        ({"action": "global"}, "collection actions"),
    ],
)
def test_unsupported_rules_are_reported_with_the_reason(
    document: dict[str, Any], reason: str
) -> None:
    doc = {"title": "odd", "logsource": {"product": "aws", "service": "cloudtrail"}, **document}
    result = compile_document(doc, "odd.yml")
    assert isinstance(result, SigmaProblem)
    assert reason in result.reason and str(result).startswith("odd.yml:1: odd: ")


def test_a_regex_that_backtracks_in_other_engines_runs_in_linear_time() -> None:
    spec = rule({"sel": {"userAgent|re": "^(a+)+$"}, "condition": "sel"})
    assert fired(spec, event(userAgent="a" * 5000 + "!")) == []


def test_a_folder_loads_with_a_problem_per_bad_document(tmp_path: Path) -> None:
    good = "title: Stop\nlogsource: {product: aws, service: cloudtrail}\n"
    good += "detection:\n  sel: {eventName: StopLogging}\n  condition: sel\n"
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "good.yml").write_text(good)
    (tmp_path / "twice.yaml").write_text(good.replace("Stop\n", "Again\n") + "---\n" + good)
    (tmp_path / "broken.yml").write_text("title: x\ndetection: [unclosed\n")
    fields_doc = good.replace("{eventName: StopLogging}", "\n    vpcEndpointId: denied")
    (tmp_path / "fields.yml").write_text(fields_doc)
    (tmp_path / "notes.txt").write_text("not a rule")
    specs, problems = load_sigma(tmp_path)
    assert sorted(s.path for s in specs) == ["sub/good.yml", "twice.yaml", "twice.yaml"]
    shown = sorted(str(p) for p in problems)
    assert shown[0].startswith("broken.yml:") and "invalid YAML" in shown[0]
    assert shown[1] == (
        "fields.yml:5: Stop: needs field(s) the cloudtrail table does not keep: vpcEndpointId"
    )
    assert len(problems) == 2
    one, problems_one = load_sigma(tmp_path / "sub" / "good.yml")
    assert [s.title for s in one] == ["Stop"] and problems_one == []
    assert [str(p) for p in load_sigma(tmp_path / "missing")[1]] == [
        f"{tmp_path / 'missing'}:1: no such file or directory"
    ]


def test_duplicate_ids_in_a_folder_are_reported(tmp_path: Path) -> None:
    text = "title: T\nid: 5f8ab1c0-3b61-4b3c-9d0a-1d2f5b0c9e11\n"
    text += "logsource: {product: aws, service: cloudtrail}\n"
    text += "detection: {sel: {eventName: X}, condition: sel}\n"
    (tmp_path / "a.yml").write_text(text)
    (tmp_path / "b.yml").write_text(text)
    specs, problems = load_sigma(tmp_path)
    assert [s.path for s in specs] == ["a.yml"]
    assert [str(p) for p in problems] == [
        "b.yml:1: T: id 5f8ab1c0-3b61-4b3c-9d0a-1d2f5b0c9e11 is already used by a.yml"
    ]


# -- robustness: no record makes a matcher raise ---------------------------------------------

EVERY_MODIFIER = {
    "a": {"eventName|startswith": "Cre", "userAgent|contains|all": ["a", "b"]},
    "b": {"userIdentity.arn|re|i": "^arn:.*:user/"},
    "c": {"sourceIPAddress|cidr": ["10.0.0.0/8", "::1/128"]},
    "d": {"requestParameters.x|gt": 3, "requestParameters.y|lte": -1.5},
    "e": {"requestParameters.x.y.z|exists": True, "responseElements.q": None},
    "f": {"requestParameters.blob|base64offset|contains": "secret"},
    "g": {"requestParameters.cmd|windash|contains": "-enc"},
    "h": {"userIdentity.arn|fieldref|contains": "requestParameters.userName"},
    "i": {"eventTime|minute": 5, "readOnly": True},
    "j": {"resources.ARN|endswith": "x", "requestParameters|contains": "*?"},
    "k": {"errorCode|cased": "Denied", "requestParameters.n": 1.5},
    "keywords": ["needle", 42],
    "condition": "1 of them or all of them or not (a and b)",
}


@pytest.fixture(scope="module")
def all_specs() -> list[SigmaSpec]:
    """A rule using every modifier, and SigmaHQ's CloudTrail rules (loaded once)."""
    return [rule(EVERY_MODIFIER), *load_sigma(SIGMAHQ)[0]]


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)
_names = st.sampled_from(["x", "y", "userName", "blob", "cmd", "ARN", "n", "z", "a.b"])
_json_object = st.dictionaries(_names | st.text(max_size=4), _json, max_size=4)
_text = st.none() | st.text(max_size=30) | st.sampled_from(["10.0.0.1", "::1", "CreateUser"])


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text_columns=st.fixed_dictionaries(
        {
            c: _text
            for c in (
                "event_source",
                "event_name",
                "source_ip",
                "user_agent",
                "identity_arn",
                "identity_type",
                "error_code",
            )
        }
    ),
    json_columns=st.fixed_dictionaries(
        {
            c: st.none()
            | st.text(max_size=20)
            | _json_object.map(lambda v: orjson.dumps(v).decode())
            | _json.map(lambda v: orjson.dumps(v).decode())
            for c in ("request_parameters", "response_elements", "resources")
        }
    ),
    read_only=st.none() | st.booleans(),
)
def test_matchers_never_raise(
    all_specs: list[SigmaSpec],
    text_columns: dict[str, Any],
    json_columns: dict[str, Any],
    read_only: bool | None,
) -> None:
    row = {**text_columns, **json_columns, "read_only": read_only}
    batch = build_batch(CLOUDTRAIL, {k: [v] for k, v in row.items()}, rows=1)
    assert len(all_specs) > 50
    for spec in all_specs:
        assert spec.matcher.rows(batch) in ([], [0])
        spec.compiled.test(Record(row))


@settings(max_examples=25, deadline=None)
@given(records=st.lists(_json_object, max_size=4))
def test_arbitrary_records_through_the_receiver_never_raise(
    all_specs: list[SigmaSpec], records: list[dict[str, Any]]
) -> None:
    shaped = [{"eventName": "CreateUser", "requestParameters": r, **r} for r in records]
    batch = parse(orjson.dumps(shaped), ReceiverOptions()).batch
    assert len(all_specs) > 50
    for spec in all_specs:
        assert all(0 <= i < batch.num_rows for i in spec.matcher.rows(batch))


_keys = st.sampled_from(
    ["eventName", "userAgent", "requestParameters.x", "errorCode", "eventTime", "", "src_ip"]
)
_modifiers = st.lists(
    st.sampled_from(
        [
            "contains",
            "startswith",
            "endswith",
            "all",
            "re",
            "i",
            "cidr",
            "exists",
            "base64",
            "base64offset",
            "windash",
            "cased",
            "gt",
            "lte",
            "neq",
            "fieldref",
            "hour",
            "expand",
            "wide",
            "bogus",
        ]
    ),
    max_size=3,
)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.sampled_from(["x", "*a?", "10.0.0.0/8", "(a)\\1", "%p%", "requestParameters.x", "-enc"])
)


@settings(max_examples=80, deadline=None)
@given(
    selections=st.dictionaries(
        st.sampled_from(["sel", "sel2", "filter"]),
        st.dictionaries(
            st.builds(lambda k, m: "|".join([k, *m]), _keys, _modifiers),
            _scalars | st.lists(_scalars, max_size=3),
            max_size=3,
        )
        | st.lists(_scalars, max_size=2)
        | _scalars,
        max_size=3,
    ),
    condition=st.sampled_from(
        ["sel", "sel and not filter", "1 of sel*", "all of them", "sel |", "x", "(sel", 5]
    ),
)
def test_any_detection_either_loads_or_says_why(selections: dict[str, Any], condition: Any) -> None:
    result = sigma({**selections, "condition": condition})
    if isinstance(result, SigmaProblem):
        assert result.reason and "/work" not in result.reason
    else:
        batch = parse(orjson.dumps([event()]), ReceiverOptions()).batch
        assert result.matcher.rows(batch) in ([], [0])


def test_a_rule_pysigma_itself_trips_on_is_a_problem_not_a_crash() -> None:
    """Found by the property above: pySigma raises AttributeError inside its own modifier code
    for `re|expand` with no value; the loader reports the rule instead of failing."""
    result = sigma({"sel": {"eventName|re|expand": None}, "condition": "sel"})
    assert isinstance(result, SigmaProblem)
    assert result.reason.startswith("pySigma cannot read this rule (AttributeError")


# -- the batch path (prefilter memos, the narrowed prefilter) against the test per record ------

_SOURCES = [
    "iam.amazonaws.com",
    "sts.amazonaws.com",
    "signin.amazonaws.com",
    "ec2.amazonaws.com",
    "ssm.amazonaws.com",
]
_NAMES = [
    "CreateUser",
    "CreateAccessKey",
    "CreateLoginProfile",
    "PutBucketPolicy",
    "GetCallerIdentity",
    "GetSigninToken",
    "ConsoleLogin",
    "StopLogging",
    "RunInstances",
]
_AGENTS = [
    "aws-cli/2.15.0",
    "S3 Browser 10.9.9 https://s3browser.com",
    "s3 browser",
    "TruffleHog",
    "trufflehog",
    "Jersey/${project.version}",
    "Mozilla/5.0 Ünïcode",
]
_ARNS = [
    "arn:aws:iam::1:user/alice",
    "arn:aws:sts::1:assumed-role/r/i-0123456789abcdef0",
    "arn:aws:sts::1:assumed-role/ADMIN/x",
    "arn:aws:sts::1:assumed-role/aws:ec2-instance/i-0abc",
]
_RECORDS = st.lists(
    st.fixed_dictionaries(
        {
            "eventSource": st.sampled_from(_SOURCES),
            "eventName": st.sampled_from(_NAMES),
            "userAgent": st.none() | st.sampled_from(_AGENTS),
            "sourceIPAddress": st.sampled_from(
                ["10.0.0.1", "ec2.amazonaws.com", "::1", "日本", "AWS Internal"]
            ),
            "errorCode": st.none() | st.sampled_from(["AccessDenied", "accessdenied"]),
            "userIdentity": st.fixed_dictionaries(
                {"type": st.sampled_from(["IAMUser", "Root", "AssumedRole"])},
                optional={"arn": st.sampled_from(_ARNS)},
            ),
            "requestParameters": st.none()
            | st.fixed_dictionaries({}, optional={"userName": st.sampled_from(["bob", "admin"])}),
        }
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(_RECORDS, min_size=1, max_size=3))
def test_the_batch_path_agrees_with_the_test_per_record(
    all_specs: list[SigmaSpec], batches: list[list[dict[str, Any]]]
) -> None:
    batch_path_agrees(all_specs, batches)


def batch_path_agrees(specs: list[SigmaSpec], batches: list[list[dict[str, Any]]]) -> None:
    """Each spec's batch path picks the rows its test per record holds on, batch after batch
    (answers remembered from one batch serve the next)."""
    for records in batches:
        shaped = [event(**record) for record in records]
        batch = parse(orjson.dumps(shaped), ReceiverOptions()).batch
        rows = batch.to_pylist()
        for spec in specs:
            expected = [i for i, row in enumerate(rows) if spec.compiled.test(Record(row))]
            assert spec.matcher.rows(batch) == expected, spec.name


# -- fields inside JSON, decided once per combination of values (_Whole) ----------------------

JSON_RULES = {
    "assumed": {
        "selection": {
            "userIdentity.type": "AssumedRole",
            "userIdentity.sessionContext.sessionIssuer.type": "Role",
        },
        "condition": "selection",
    },
    "kinds": {  # 1, 1.0, true and "1" are one key to Python, not to Sigma
        "one": {"requestParameters.v": 1},
        "truth": {"requestParameters.v": True},
        "text": {"requestParameters.v|contains": "1."},
        "condition": "(one and not truth) or text",
    },
    "mixed": {
        "selection": {"eventName|startswith": "Create", "requestParameters.userName|re": "^adm"},
        "gone": {"requestParameters.userName|exists": False, "eventName": "CreateUser"},
        "same": {"userIdentity.arn|fieldref|endswith": "requestParameters.userName"},
        "condition": "selection or gone or same",
    },
}
_VALUES = st.sampled_from(
    [1, 1.0, True, "1", "1.5", None, "admin", "bob", {"n": 1}, [1, [2]], ["bob", "Role", "admin"]]
)
_JSON_RECORDS = st.lists(
    st.fixed_dictionaries(
        {
            "eventName": st.sampled_from(["CreateUser", "CreateRole", "DeleteUser"]),
            "userIdentity": st.fixed_dictionaries(
                {"type": st.sampled_from(["AssumedRole", "IAMUser"])},
                optional={
                    "arn": st.sampled_from(["arn:aws:iam::1:user/admin", "arn:x/bob"]),
                    "sessionContext": st.fixed_dictionaries(
                        {},
                        optional={
                            "sessionIssuer": st.fixed_dictionaries(
                                {}, optional={"type": _VALUES | st.just("Role")}
                            )
                        },
                    ),
                },
            ),
            "requestParameters": st.none()
            | st.fixed_dictionaries({}, optional={"v": _VALUES, "userName": _VALUES}),
        }
    ),
    min_size=1,
    max_size=16,
)


@pytest.fixture(scope="module")
def json_specs() -> list[SigmaSpec]:
    return [rule(detection, title=name) for name, detection in JSON_RULES.items()]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(_JSON_RECORDS, min_size=1, max_size=3))
def test_fields_inside_json_decided_per_combination_agree_with_the_test_per_record(
    json_specs: list[SigmaSpec], batches: list[list[dict[str, Any]]]
) -> None:
    # every candidate set is numbered, however small
    with mock.patch.object(evaluate, "_FEW", 0):
        batch_path_agrees(json_specs, batches)


def test_a_rule_reading_json_decides_repeated_rows_once() -> None:
    if evaluate.FIELDS is None:
        pytest.skip("the native reader was not built")
    spec = rule(JSON_RULES["assumed"])
    role = {"type": "AssumedRole", "sessionContext": {"sessionIssuer": {"type": "Role"}}}
    user = {"type": "AssumedRole", "sessionContext": {"sessionIssuer": {"type": "User"}}}
    odd = {"type": "AssumedRole", "sessionContext": {"sessionIssuer": {"type": {"x": 1}}}}
    records = [event(userIdentity=role), event(userIdentity=user), event(userIdentity=odd)] * 20
    calls: list[Any] = []
    test = spec.compiled.test
    with mock.patch.object(spec.matcher._whole._memo, "test", lambda r: calls.append(r) or test(r)):
        assert fired(spec, *records) == list(range(0, 60, 3))
        assert fired(spec, *records) == list(range(0, 60, 3))
    # one test per new combination; the row whose value is an object was left to the test
    # per row (Python compares its JSON text), and was never a combination
    assert len(calls) == 2


def test_combinations_of_many_values_each_are_numbered_in_64_bits() -> None:
    """The distinct combinations of two columns whose values number 70,000 each: a combined
    number reaches 4.9 billion, past 32 bits, where the arithmetic must widen."""
    import pyarrow as pa

    many = [f"v{i}" for i in range(70_000)]
    first = (many, pa.array([69_999, 0, 69_999], pa.int32()))
    second = (many, pa.array([69_999, 5, 69_999], pa.int32()))
    index = evaluate.combined([first, second])
    found = [index.keys[i] for i in index.inverse.to_pylist()]
    assert found == [("v69999", "v69999"), ("v0", "v5"), ("v69999", "v69999")]
    assert len(index.keys) == 2
