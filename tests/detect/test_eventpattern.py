"""Event patterns beyond the shared cases: each operator's edges, every refusal, the index."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecsguard.core.errors import UserError
from ecsguard.detect.eventpattern import (
    InvalidPatternError,
    PatternSet,
    compile_pattern,
    matches,
)

TASK_STOPPED = {
    "version": "0",
    "id": "9f2e",
    "detail-type": "ECS Task State Change",
    "source": "aws.ecs",
    "account": "111122223333",
    "time": "2026-11-28T10:00:00Z",
    "region": "ap-northeast-1",
    "resources": ["arn:aws:ecs:ap-northeast-1:111122223333:task/prod/1a2b"],
    "detail": {
        "clusterArn": "arn:aws:ecs:ap-northeast-1:111122223333:cluster/prod",
        "lastStatus": "STOPPED",
        "stopCode": "EssentialContainerExited",
        "stoppedReason": "Essential container in task exited",
        "containers": [
            {"name": "app", "exitCode": 137, "reason": "OutOfMemoryError: Container killed"},
            {"name": "log_router", "exitCode": 0},
        ],
        "cpu": "256",
        "ratio": 0.25,
        "spot": False,
        "note": None,
        "empty": "",
        "ip": "2001:db8::1",
        "v4": "10.1.2.3",
    },
}


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        # exact values: strings are not numbers, true is not 1, null is not "null"
        ({"cpu": ["256"]}, True),
        ({"cpu": [256]}, False),
        ({"ratio": [0.25]}, True),
        ({"ratio": [2.5e-1]}, True),
        ({"spot": [False]}, True),
        ({"spot": [0]}, False),
        ({"note": [None]}, True),
        ({"note": ["null"]}, False),
        ({"empty": [""]}, True),
        ({"empty": [None]}, False),
        # arrays: any element; objects inside arrays give their fields
        ({"containers": {"exitCode": [137]}}, True),
        ({"containers": {"name": ["app"], "exitCode": [137]}}, True),
        ({"containers": {"name": ["log_router"], "exitCode": [137]}}, False),  # consistency
        ({"containers": {"name": ["app"], "missing": [{"exists": False}]}}, True),
        # prefix / suffix, with and without case
        ({"stopCode": [{"prefix": "Essential"}]}, True),
        ({"stopCode": [{"prefix": "essential"}]}, False),
        ({"stopCode": [{"prefix": {"equals-ignore-case": "ESSENTIAL"}}]}, True),
        ({"stopCode": [{"suffix": {"equals-ignore-case": "EXITED"}}]}, True),
        ({"cpu": [{"prefix": ""}]}, True),
        ({"ratio": [{"prefix": ""}]}, False),  # prefix never matches a number
        ({"lastStatus": [{"equals-ignore-case": "stopped"}]}, True),
        # wildcard, escapes included
        ({"stoppedReason": [{"wildcard": "Essential*exited"}]}, True),
        ({"stoppedReason": [{"wildcard": "*container*task*"}]}, True),
        ({"stoppedReason": [{"wildcard": "*task"}]}, False),
        ({"stoppedReason": [{"wildcard": "*"}]}, True),
        ({"ratio": [{"wildcard": "*"}]}, False),
        # numeric: operators, ranges, six decimals, strings never numeric
        ({"ratio": [{"numeric": [">", 0, "<=", 0.25]}]}, True),
        ({"ratio": [{"numeric": [">", 0.25]}]}, False),
        ({"ratio": [{"numeric": [">=", 0.25]}]}, True),
        ({"ratio": [{"numeric": ["<", 0.25]}]}, False),
        ({"ratio": [{"numeric": ["=", 0.2500000001]}]}, True),
        ({"containers": {"exitCode": [{"numeric": [">=", 1, "<", 138]}]}}, True),
        ({"cpu": [{"numeric": [">", 0]}]}, False),
        # anything-but: the other kind of value passes, null passes, absence does not
        ({"cpu": [{"anything-but": 256}]}, True),
        ({"cpu": [{"anything-but": "256"}]}, False),
        ({"ratio": [{"anything-but": ["a", "b"]}]}, True),
        ({"note": [{"anything-but": "x"}]}, True),
        ({"absent": [{"anything-but": "x"}]}, False),
        ({"lastStatus": [{"anything-but": {"equals-ignore-case": ["stopped"]}}]}, False),
        ({"lastStatus": [{"anything-but": {"prefix": ["RUN", "PEND"]}}]}, True),
        ({"lastStatus": [{"anything-but": {"wildcard": "*OP*"}}]}, False),
        # exists: leaves only, null is a leaf, objects and arrays are not
        ({"note": [{"exists": True}]}, True),
        ({"containers": [{"exists": True}]}, False),
        ({"containers": [{"exists": False}]}, True),
        ({"absent": [{"exists": True}, {"exists": False}]}, True),
        # cidr and IP values
        ({"v4": [{"cidr": "10.1.0.0/16"}]}, True),
        ({"v4": [{"cidr": "10.1.2.3/32"}]}, True),
        ({"v4": [{"cidr": "10.2.0.0/16"}]}, False),
        ({"ip": [{"cidr": "2001:db8::/32"}]}, True),
        ({"ip": [{"cidr": "2001:db9::/32"}]}, False),
        ({"v4": [{"cidr": "2001:db8::/32"}]}, False),
        ({"ip": ["2001:0db8:0:0:0:0:0:1"]}, True),
        # dotted keys are nested fields
        ({"containers.name": ["app"]}, True),
        # $or, nested in a branch
        ({"$or": [{"cpu": ["512"]}, {"lastStatus": ["STOPPED"]}]}, True),
        (
            {
                "$or": [
                    {"cpu": ["512"]},
                    {"lastStatus": ["STOPPED"], "$or": [{"spot": [True]}, {"note": [None]}]},
                ]
            },
            True,
        ),
        ({"$or": [{"cpu": ["512"]}, {"lastStatus": ["RUNNING"]}]}, False),
    ],
)
def test_operator(detail: dict[str, Any], expected: bool) -> None:
    pattern = {"source": ["aws.ecs"], "detail": detail}
    assert matches(pattern, TASK_STOPPED) is expected


def test_numbers_out_of_the_numeric_range_compare_exactly() -> None:
    event = {"account": 123456789012, "big": 6e9}
    assert matches({"account": [123456789012]}, event)
    assert not matches({"account": [123456789013]}, event)
    assert not matches({"big": [{"numeric": [">", 0]}]}, event)  # outside ±5e9: not numeric
    assert matches({"big": [{"anything-but": [1, 2]}]}, event)


def test_json_text_and_mappings_compile_alike() -> None:
    text = '{"detail": {"location": [{"prefix": "us-"}], "location": [{"anything-but": "x"}]}}'
    assert matches(text, {"detail": {"location": "eu-west-1"}})  # the last repeated key wins
    assert matches(text.encode(), {"detail": {"location": "eu-west-1"}})


def test_or_branch_overrides_an_earlier_field_and_a_later_field_overrides_branches() -> None:
    earlier = {"name": ["a"], "$or": [{"name": ["c"]}, {"other": ["x"]}]}
    assert matches(earlier, {"name": "c"})
    later = {"$or": [{"name": ["c"]}, {"other": ["x"]}], "name": ["a"]}
    assert not matches(later, {"name": "c"})
    assert matches(later, {"name": "a", "other": "x"})


def test_explain_names_the_failing_fields_of_the_closest_branch() -> None:
    pattern = compile_pattern(
        {"source": ["aws.ecs"], "detail": {"lastStatus": ["RUNNING"], "gone": [{"exists": True}]}}
    )
    reasons = pattern.explain(TASK_STOPPED)
    assert reasons == [
        "detail.lastStatus: 'STOPPED' does not match [\"RUNNING\"]",
        'detail.gone: missing (pattern [{"exists": true}])',
    ]
    assert compile_pattern({"source": ["aws.ecs"]}).explain(TASK_STOPPED) == []
    consistent = compile_pattern(
        {"detail": {"containers": {"name": ["log_router"], "exitCode": [137]}}}
    )
    assert consistent.explain(TASK_STOPPED) == [
        "the matching values are in different elements of the same array"
    ]


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("{not json", "invalid JSON"),
        ("[1]", "Filter is not an object"),
        ({}, "Empty objects are not allowed"),
        ({"detail": {}}, "Empty objects are not allowed (at detail)"),
        ({1: ["a"]}, "Field names must be strings"),
        ({"$or": {"a": ["b"]}}, "It must be an Array followed with $or."),
        ({"$or": [{"a": ["b"]}, "c"]}, "Only JSON object is allowed in array of $or"),
        ({"$or": [{"a": ["b"]}]}, "There must have at least 2 Objects in $or relationship."),
        ({"$or": [{"prefix": ["b"]}, {"a": ["c"]}]}, "prefix is Ruler reserved fieldName"),
        (
            {
                "$or": [{f"a{i}": ["x"]} for i in range(40)],
                "b": {"$or": [{f"b{i}": ["x"]} for i in range(40)]},
            },
            "Too many $or combinations",
        ),
        ({"source": "aws.ecs"}, '"source" must be an object or an array (at source)'),
        ({"source": []}, "Empty arrays are not allowed (at source)"),
        ({"source": [["a"]]}, "Match value must be String, number, true, false, or null"),
        ({"a": [{}]}, "Match expression name not found"),
        ({"a": [{"prefix": 1}]}, "prefix match pattern must be a string"),
        ({"a": [{"suffix": None}]}, "suffix match pattern must be a string"),
        ({"a": [{"prefix": {"equals-ignore-case": 1}}]}, "equals-ignore-case match pattern must"),
        ({"a": [{"prefix": "x", "suffix": "y"}]}, "Only one key allowed in match expression"),
        ({"a": [{"equals-ignore-case": 1}]}, "equals-ignore-case match pattern must be a string"),
        ({"a": [{"wildcard": "a**"}]}, "Consecutive wildcard characters at pos 2"),
        ({"a": [{"wildcard": "é**"}]}, "Consecutive wildcard characters at pos 3"),
        ({"a": [{"wildcard": "a\\b"}]}, "Invalid escape character at pos 2"),
        ({"a": [{"wildcard": "a\\"}]}, "Invalid escape character at pos 2"),
        ({"a": [{"numeric": 5}]}, "Value of numeric must be an array."),
        ({"a": [{"numeric": []}]}, "Invalid member in numeric match: ]"),
        ({"a": [{"numeric": [5, ">"]}]}, "Invalid member in numeric match: 5"),
        ({"a": [{"numeric": ["=", "5"]}]}, "Value of equals must be numeric"),
        ({"a": [{"numeric": ["=", True]}]}, "Value of equals must be numeric"),
        ({"a": [{"numeric": ["=", 5, 6]}]}, "Too many elements in numeric expression"),
        ({"a": [{"numeric": ["<", 5, "<", 6]}]}, "Too many elements in numeric expression"),
        ({"a": [{"numeric": ["!=", 5]}]}, "Unrecognized numeric range operator: !="),
        ({"a": [{"numeric": [">", 5, 6]}]}, "Bad value in numeric range: 6"),
        ({"a": [{"numeric": [">", 5, ">", 6]}]}, "Bad numeric range operator: >"),
        ({"a": [{"numeric": [">", 0, "<"]}]}, "Value of < must be numeric"),
        ({"a": [{"numeric": [">", 0, "<", 5, 6]}]}, "Too many terms in numeric range expression"),
        ({"a": [{"numeric": [">", 6e9]}]}, "Value must be between -5.0E9 and 5.0E9, inclusive"),
        ({"a": [{"numeric": [">", 5, "<", 5]}]}, "Bottom must be less than top"),
        ({"a": [{"numeric": [">", 5], "x": 1}]}, "Too many elements in numeric expression"),
        ({"a": [{"anything-but": {}}]}, "Anything-But expression name not found"),
        ({"a": [{"anything-but": {"prefix": "a", "suffix": "b"}}]}, "Only one key allowed"),
        ({"a": [{"anything-but": {"numeric": [">", 1]}}]}, "Unsupported anything-but pattern"),
        ({"a": [{"anything-but": {"equals-ignore-case": 5}}]}, "number|start|null|boolean"),
        ({"a": [{"anything-but": {"equals-ignore-case": {}}}]}, "must be an array or single"),
        ({"a": [{"anything-but": {"equals-ignore-case": []}}]}, "Empty arrays are not allowed"),
        ({"a": [{"anything-but": {"prefix": 5}}]}, "prefix/suffix match pattern must be a string"),
        ({"a": [{"anything-but": {"prefix": None}}]}, "must be an array or single"),
        ({"a": [{"anything-but": {"prefix": ""}}]}, "Null prefix/suffix not allowed"),
        ({"a": [{"anything-but": {"suffix": []}}]}, "Empty arrays are not allowed"),
        ({"a": [{"anything-but": {"wildcard": "a**"}}]}, "Consecutive wildcard characters"),
        ({"a": [{"anything-but": True}]}, "must be an array or single string/number value."),
        ({"a": [{"anything-but": ["a", None]}]}, "start|null|boolean is not supported."),
        ({"a": [{"anything-but": ["a", 1]}]}, "mixed type is not supported"),
        ({"a": [{"anything-but": []}]}, "mixed type is not supported"),
        ({"a": [{"anything-but": 6e9}]}, "Value must be between"),
        ({"a": [{"anything-but": "x", "y": 1}]}, "Too many elements in numeric expression"),
        ({"a": [{"exists": "yes"}]}, "exists match pattern must be either true or false."),
        ({"a": [{"exists": True, "x": 1}]}, "Only one key allowed in match expression"),
        ({"a": [{"cidr": 10}]}, "cidr match pattern must be a string"),
        ({"a": [{"cidr": "10.0.0.0/"}]}, "Malformed CIDR, one '/' required"),
        ({"a": [{"cidr": "10.0.0.0/8/8"}]}, "Malformed CIDR, one '/' required"),
        ({"a": [{"cidr": "10.0.0.0/-1"}]}, "Malformed CIDR, mask bits must not be negative"),
        ({"a": [{"cidr": "999.0.0.0/8"}]}, "Invalid IP address: 999.0.0.0"),
        ({"a": [{"cidr": "10.0.0.0/33"}]}, "IPv4 mask bits must be <= 32"),
        ({"a": [{"cidr": "::/129"}]}, "IPv6 mask bits must be <= 128"),
        ({"a": [{"regex": "x"}]}, "Unrecognized match type regex"),
    ],
)
def test_invalid(pattern: Any, reason: str) -> None:
    with pytest.raises(InvalidPatternError) as raised:
        compile_pattern(pattern)
    assert raised.value.problem.startswith("Event pattern is not valid. Reason: ")
    assert reason in raised.value.problem
    assert isinstance(raised.value, UserError) and raised.value.exit_code == 2


def test_pattern_set_ids_order_and_changes() -> None:
    patterns = PatternSet(
        {
            "stopped": {"detail": {"lastStatus": ["STOPPED"]}},
            "ecs": '{"source": ["aws.ecs"]}',
            "oom": {"detail": {"containers": {"reason": [{"prefix": "OutOfMemory"}]}}},
            "ec2": {"source": ["aws.ec2"]},
            "absent": {"detail": {"nothing": [{"exists": False}]}},
        }
    )
    assert patterns.match_all(TASK_STOPPED) == ["stopped", "ecs", "oom", "absent"]
    patterns.remove("ecs")
    patterns.add("exec", {"detail-type": [{"equals-ignore-case": "ecs task state change"}]})
    assert patterns.match_all(TASK_STOPPED) == ["stopped", "oom", "absent", "exec"]
    assert len(patterns) == 5 and "exec" in patterns and "ecs" not in patterns
    assert patterns.match_many([TASK_STOPPED, {"source": "aws.ec2"}])[1] == ["ec2", "absent"]
    with pytest.raises(InvalidPatternError):
        patterns.add("bad", {"source": []})


def test_top_level_requirements_for_row_filtering() -> None:
    fields = ("source", "detail-type")
    patterns = PatternSet(
        {
            "a": {"source": ["aws.ecs"], "detail-type": ["ECS Task State Change"]},
            "b": {"source": ["aws.ecs", "aws.ec2"]},
            "c": {"$or": [{"source": ["aws.iam"]}, {"detail-type": ["X"]}]},
        }
    )
    # each branch contributes its smallest requirement: "a" its source, "c"'s second branch X
    assert patterns.top_level_requirements(fields) == {
        "detail-type": frozenset({"X"}),
        "source": frozenset({"aws.ecs", "aws.ec2", "aws.iam"}),
    }
    patterns.add("d", {"detail": {"x": ["y"]}})
    assert patterns.top_level_requirements(fields) is None


# --- the index against testing every pattern on every event --------------------------------

FIELDS = ["source", "detail-type", "detail.a", "detail.b", "detail.c.d", "detail.list.e"]
WORDS = ["aws.ecs", "aws.iam", "Run", "run", "STOPPED", "", "10.0.0.1", "a.b"]
SCALARS = st.one_of(
    st.sampled_from(WORDS), st.sampled_from([0, 1, 2.5, 300, -7]), st.booleans(), st.none()
)


def _operator() -> st.SearchStrategy[Any]:
    word = st.sampled_from(WORDS)
    number = st.sampled_from([0, 1, 2.5, 300])
    return st.one_of(
        SCALARS,
        st.builds(lambda w: {"prefix": w}, word),
        st.builds(lambda w: {"prefix": {"equals-ignore-case": w}}, word),
        st.builds(lambda w: {"suffix": w}, word),
        st.builds(lambda w: {"equals-ignore-case": w}, word),
        st.builds(lambda w: {"wildcard": f"*{w}*"}, st.sampled_from(["S", "a", "un"])),
        st.builds(lambda n: {"numeric": [">", n]}, number),
        st.builds(lambda n: {"numeric": [">=", n - 1, "<", n + 1]}, number),
        st.builds(lambda w: {"anything-but": w}, word),
        st.builds(lambda n: {"anything-but": [n]}, number),
        st.builds(lambda w: {"anything-but": {"prefix": w}}, st.sampled_from(["R", "aws."])),
        st.builds(lambda b: {"exists": b}, st.booleans()),
        st.just({"cidr": "10.0.0.0/24"}),
    )


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, value in flat.items():
        node = out
        *parents, last = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


FLAT_PATTERNS = st.dictionaries(
    st.sampled_from(FIELDS), st.lists(_operator(), min_size=1, max_size=3), min_size=1, max_size=3
)
PATTERNS = st.one_of(
    FLAT_PATTERNS.map(_nest),
    st.builds(
        lambda a, b, c: {**_nest(a), "$or": [_nest(b), _nest(c)]},
        FLAT_PATTERNS,
        FLAT_PATTERNS,
        FLAT_PATTERNS,
    ),
)
EVENTS = st.dictionaries(
    st.sampled_from(FIELDS),
    st.one_of(SCALARS, st.lists(SCALARS, max_size=3)),
    max_size=6,
).map(
    lambda flat: {
        **_nest({k: v for k, v in flat.items() if not k.startswith("detail.list")}),
        "detail": {
            **_nest(
                {k: v for k, v in flat.items() if k.startswith("detail.") and "list" not in k}
            ).get("detail", {}),
            "list": [{"e": v} for k, v in flat.items() if k == "detail.list.e"],
        },
    }
)


def _valid(pattern: dict[str, Any]) -> bool:
    try:
        compile_pattern(pattern)
    except InvalidPatternError:
        return False
    return True


@settings(max_examples=40, deadline=None)
@given(st.lists(PATTERNS, min_size=1, max_size=12), st.lists(EVENTS, min_size=1, max_size=5))
def test_pattern_set_agrees_with_each_pattern_alone(
    patterns: list[dict[str, Any]], events: list[dict[str, Any]]
) -> None:
    chosen = {f"p{i}": p for i, p in enumerate(patterns) if _valid(p)}
    index = PatternSet(chosen)
    compiled = {key: compile_pattern(p) for key, p in chosen.items()}
    for event in events:
        expected = [key for key, pattern in compiled.items() if pattern.matches(event)]
        assert index.match_all(event) == expected
