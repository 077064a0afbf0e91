"""Condition blocks: every operator family, IfExists, set operators, variables, three values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecsguard.core.errors import UserError
from ecsguard.iam.conditions import (
    Clause,
    ConditionError,
    Context,
    Truth,
    all_of,
    any_of,
    arn_matches,
    evaluate_condition,
    parse_condition,
    parse_date,
    resolve_variables,
)

T, F, U = Truth.TRUE, Truth.FALSE, Truth.UNKNOWN
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def truth(condition: dict[str, Any], context: dict[str, Any] | None = None, **kw: Any) -> Truth:
    return evaluate_condition(condition, context or {}, **kw).truth


def test_kleene_logic() -> None:
    assert (T & U, F & U, U & U, T & T) == (U, F, U, T)
    assert (T | U, F | U, U | U, F | F) == (T, U, U, F)
    assert (~T, ~F, ~U) == (F, T, U)
    assert any_of([]) is F and all_of([]) is T
    assert any_of([F, U]) is U and all_of([T, U]) is U
    with pytest.raises(TypeError):
        bool(F)  # `if truth:` would read FALSE as true


def test_empty_condition_holds() -> None:
    assert truth({}) is T
    assert evaluate_condition(None).truth is T


def test_string_operators() -> None:
    ctx = {"aws:PrincipalTag/team": "Platform"}
    assert truth({"StringEquals": {"aws:PrincipalTag/team": "Platform"}}, ctx) is T
    assert truth({"StringEquals": {"aws:PrincipalTag/team": "platform"}}, ctx) is F
    assert truth({"StringNotEquals": {"aws:PrincipalTag/team": "sre"}}, ctx) is T
    assert truth({"StringNotEquals": {"aws:PrincipalTag/team": "Platform"}}, ctx) is F
    assert truth({"StringEqualsIgnoreCase": {"aws:PrincipalTag/team": "PLATFORM"}}, ctx) is T
    assert truth({"StringEqualsIgnoreCase": {"aws:PrincipalTag/team": "sre"}}, ctx) is F
    assert truth({"StringNotEqualsIgnoreCase": {"aws:PrincipalTag/team": "platform"}}, ctx) is F
    assert truth({"StringNotEqualsIgnoreCase": {"aws:PrincipalTag/team": "sre"}}, ctx) is T
    assert truth({"StringLike": {"aws:PrincipalTag/team": "Plat*"}}, ctx) is T
    assert truth({"StringLike": {"aws:PrincipalTag/team": "Plat?orm"}}, ctx) is T
    assert truth({"StringLike": {"aws:PrincipalTag/team": "plat*"}}, ctx) is F  # case matters
    assert truth({"StringNotLike": {"aws:PrincipalTag/team": "S*"}}, ctx) is T
    assert truth({"StringNotLike": {"aws:PrincipalTag/team": "P*"}}, ctx) is F


def test_keys_are_case_insensitive_operators_too() -> None:
    ctx = {"AWS:PrincipalTag/Team": "x"}
    assert truth({"StringEquals": {"aws:principaltag/team": "x"}}, ctx) is T
    assert truth({"stringequals": {"aws:PrincipalTag/team": "x"}}, ctx) is T


def test_values_or_keys_and_negated_nor() -> None:
    ctx = {"aws:RequestedRegion": "eu-west-1", "aws:PrincipalAccount": "111111111111"}
    regions = ["us-east-1", "eu-west-1"]
    assert truth({"StringEquals": {"aws:RequestedRegion": regions}}, ctx) is T
    assert truth({"StringNotEquals": {"aws:RequestedRegion": regions}}, ctx) is F  # NOR
    assert (
        truth({"StringNotEquals": {"aws:RequestedRegion": ["us-east-1", "ap-south-1"]}}, ctx) is T
    )
    both = {"aws:RequestedRegion": "eu-west-1", "aws:PrincipalAccount": "111111111111"}
    assert truth({"StringEquals": both}, ctx) is T
    assert truth({"StringEquals": {**both, "aws:PrincipalAccount": "2"}}, ctx) is F  # AND
    across = {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}, "Bool": {"aws:x": "true"}}
    assert truth(across, {**ctx, "aws:x": False}) is F


def test_numeric_operators() -> None:
    ctx = {"s3:max-keys": "10"}
    assert truth({"NumericEquals": {"s3:max-keys": "10"}}, ctx) is T
    assert truth({"NumericNotEquals": {"s3:max-keys": "10"}}, ctx) is F
    assert truth({"NumericLessThan": {"s3:max-keys": "11"}}, ctx) is T
    assert truth({"NumericLessThan": {"s3:max-keys": "10"}}, ctx) is F
    assert truth({"NumericLessThanEquals": {"s3:max-keys": 10}}, ctx) is T
    assert truth({"NumericGreaterThan": {"s3:max-keys": "9.5"}}, ctx) is T
    assert truth({"NumericGreaterThanEquals": {"s3:max-keys": "11"}}, ctx) is F
    assert truth({"NumericEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": "ten"}) is F


def test_date_operators_iso_and_epoch_against_now() -> None:
    past, future = "2026-01-01T00:00:00Z", "2027-01-01"
    assert truth({"DateLessThan": {"aws:CurrentTime": future}}, now=NOW) is T
    assert truth({"DateLessThan": {"aws:CurrentTime": past}}, now=NOW) is F  # expired
    assert truth({"DateGreaterThan": {"aws:CurrentTime": past}}, now=NOW) is T
    assert truth({"DateGreaterThanEquals": {"aws:CurrentTime": future}}, now=NOW) is F
    assert truth({"DateLessThanEquals": {"aws:CurrentTime": NOW.isoformat()}}, now=NOW) is T
    assert truth({"DateEquals": {"aws:CurrentTime": "2026-06-01T12:00:00Z"}}, now=NOW) is T
    assert truth({"DateNotEquals": {"aws:CurrentTime": "2026-06-01T12:00:00Z"}}, now=NOW) is F
    epoch = str(int(datetime(2026, 3, 1, tzinfo=UTC).timestamp()))
    assert truth({"DateGreaterThan": {"aws:CurrentTime": epoch}}, now=NOW) is T
    assert truth({"NumericLessThan": {"aws:EpochTime": epoch}}, now=NOW) is F
    # without a time, "now" is unknown; the context may also carry it
    assert truth({"DateLessThan": {"aws:CurrentTime": past}}) is U
    assert (
        truth({"DateLessThan": {"aws:CurrentTime": past}}, {"aws:CurrentTime": "2025-01-01"}) is T
    )
    assert truth({"DateLessThan": {"aws:TokenIssueTime": past}}, {"aws:TokenIssueTime": 0}) is T


def test_bool_binary_ip_and_arn_operators() -> None:
    assert truth({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": False}) is T
    assert truth({"Bool": {"aws:SecureTransport": True}}, {"aws:SecureTransport": "false"}) is F
    assert truth({"BinaryEquals": {"k:b": "QUJD"}}, {"k:b": b"ABC"}) is T
    assert truth({"BinaryEquals": {"k:b": "QUJD"}}, {"k:b": "QUJE"}) is F
    ip = {"aws:SourceIp": "203.0.113.7"}
    assert truth({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, ip) is T
    assert truth({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "203.0.113.7"]}}, ip) is T
    assert truth({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, ip) is F
    assert truth({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, ip) is T
    assert (
        truth({"IpAddress": {"aws:SourceIp": "2001:db8::/32"}}, {"aws:SourceIp": "2001:db8::1"})
        is T
    )
    assert truth({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "not-an-ip"}) is F
    role = {"aws:SourceArn": "arn:aws:ecs:ap-northeast-1:123456789012:cluster/prod"}
    assert truth({"ArnLike": {"aws:SourceArn": "arn:aws:ecs:*:123456789012:cluster/*"}}, role) is T
    assert truth({"ArnEquals": {"aws:SourceArn": role["aws:SourceArn"]}}, role) is T
    assert truth({"ArnNotLike": {"aws:SourceArn": "arn:aws:ecs:*:*:cluster/staging"}}, role) is T
    assert truth({"ArnNotEquals": {"aws:SourceArn": role["aws:SourceArn"]}}, role) is F
    assert truth({"ArnLike": {"aws:SourceArn": "arn:aws:ecs:*:999999999999:*"}}, role) is F


def test_arn_wildcards_stay_within_their_part() -> None:
    assert arn_matches("arn:aws:iam::*:role/app-*", "arn:aws:iam::123456789012:role/app-web")
    assert arn_matches("arn:aws:logs:*:*:log-group:/ecs/*", "arn:aws:logs:r:1:log-group:/ecs/x:*")
    # the account part's star does not run over into the resource part
    assert not arn_matches("arn:aws:iam::*:role/x", "arn:aws:iam::1:2:role/x")
    assert arn_matches("arn:aws:s3:::b*", "arn:aws:s3:::bucket")  # five-colon forms as a whole
    assert arn_matches("*", "anything")


def test_null_operator() -> None:
    assert truth({"Null": {"aws:TokenIssueTime": "true"}}, {"aws:TokenIssueTime": None}) is T
    assert truth({"Null": {"aws:TokenIssueTime": "false"}}, {"aws:TokenIssueTime": None}) is F
    assert truth({"Null": {"aws:TokenIssueTime": "false"}}, {"aws:TokenIssueTime": "2026"}) is T
    assert truth({"Null": {"aws:TokenIssueTime": "true"}}, {"aws:TokenIssueTime": []}) is T
    assert truth({"Null": {"aws:TokenIssueTime": "true"}}) is U


def test_unknown_versus_absent_keys() -> None:
    clause = {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    unknown = evaluate_condition(clause, {})
    assert unknown.truth is U
    assert unknown.unknown == (Clause("IpAddress", "aws:SourceIp", ("10.0.0.0/8",)),)
    assert str(unknown.unknown[0]) == "IpAddress aws:SourceIp 10.0.0.0/8"
    absent = {"aws:SourceIp": None}
    assert truth(clause, absent) is F  # a positive operator fails on an absent key
    assert truth({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, absent) is T  # negated holds
    # a FALSE clause decides even when another is unknown
    assert (
        truth({**clause, "Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": 0}) is F
    )


def test_if_exists() -> None:
    mfa = {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}
    assert truth(mfa, {"aws:MultiFactorAuthPresent": None}) is T  # absent: holds
    assert truth(mfa, {}) is U  # unknown
    assert truth(mfa, {"aws:MultiFactorAuthPresent": True}) is F
    assert truth(mfa, {"aws:MultiFactorAuthPresent": False}) is T
    tag = {"StringEqualsIfExists": {"aws:ResourceTag/env": "prod"}}
    assert truth(tag, {"aws:ResourceTag/env": "dev"}) is F
    assert truth(tag, {"aws:ResourceTag/env": []}) is T


def test_set_operators() -> None:
    keys = ["env", "team"]
    allowed = {"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team", "owner"]}}
    assert truth(allowed, {"aws:TagKeys": keys}) is T
    assert truth(allowed, {"aws:TagKeys": [*keys, "secret"]}) is F
    assert truth(allowed, {"aws:TagKeys": []}) is T  # vacuously true on an empty set
    assert truth(allowed, {"aws:TagKeys": None}) is T
    assert truth(allowed, {}) is U
    anyone = {"ForAnyValue:StringLike": {"aws:TagKeys": "sec*"}}
    assert truth(anyone, {"aws:TagKeys": ["env", "secret"]}) is T
    assert truth(anyone, {"aws:TagKeys": keys}) is F
    assert truth(anyone, {"aws:TagKeys": []}) is F
    none_of = {"ForAllValues:StringNotEquals": {"aws:TagKeys": ["secret", "owner"]}}
    assert truth(none_of, {"aws:TagKeys": keys}) is T
    assert truth(none_of, {"aws:TagKeys": ["env", "owner"]}) is F
    # a plain operator on a multivalued key: any value will do
    assert truth({"StringEquals": {"aws:TagKeys": "team"}}, {"aws:TagKeys": keys}) is T


def test_policy_variables() -> None:
    home = {"StringLike": {"s3:prefix": "home/${aws:username}/*"}}
    assert truth(home, {"s3:prefix": "home/alice/x", "aws:username": "alice"}) is T
    assert truth(home, {"s3:prefix": "home/bob/x", "aws:username": "alice"}) is F
    assert truth(home, {"s3:prefix": "home/alice/x"}) is U  # who is asking is unknown
    owner = {"StringEquals": {"aws:ResourceTag/owner": "${aws:username}"}}
    assert truth(owner, {"aws:ResourceTag/owner": "bob", "aws:username": "bob"}) is T
    assert truth(owner, {"aws:ResourceTag/owner": "bob", "aws:username": None}) is F
    fallback = {"StringEquals": {"aws:ResourceTag/owner": "${aws:username, 'nobody'}"}}
    assert truth(fallback, {"aws:ResourceTag/owner": "nobody", "aws:username": None}) is T
    literal = {"StringLike": {"s3:prefix": "a${*}b"}}  # ${*} is an asterisk, not a wildcard
    assert truth(literal, {"s3:prefix": "a*b"}) is T
    assert truth(literal, {"s3:prefix": "axxb"}) is F
    ctx = Context({"aws:username": "alice"})
    assert resolve_variables("u/${aws:username}", ctx) == "u/alice"
    assert resolve_variables("u/${aws:userid}", ctx) is U
    assert resolve_variables("plain", ctx) == "plain"


def test_unknown_operator_is_a_clear_error() -> None:
    with pytest.raises(ConditionError, match="unknown condition operator 'StringEqualz'") as err:
        evaluate_condition({"StringEqualz": {"aws:username": "a"}}, {})
    assert isinstance(err.value, ValueError) and isinstance(err.value, UserError)
    assert "StringEquals" in err.value.hint
    with pytest.raises(ConditionError, match="unknown condition operator"):
        parse_condition({"ForSomeValues:StringEquals": {"k": "v"}})
    with pytest.raises(ConditionError, match="must map condition keys"):
        parse_condition({"StringEquals": "aws:username"})
    with pytest.raises(ConditionError, match="Condition must be an object"):
        parse_condition(["StringEquals"])  # type: ignore[arg-type]
    with pytest.raises(ConditionError, match="Null cannot take IfExists"):
        parse_condition({"NullIfExists": {"k": "true"}})


def test_unreadable_policy_values_name_the_clause() -> None:
    with pytest.raises(ConditionError, match=r"NumericLessThan s3:max-keys.*'many'"):
        evaluate_condition({"NumericLessThan": {"s3:max-keys": "many"}}, {"s3:max-keys": 1})
    with pytest.raises(ConditionError, match="DateLessThan"):
        evaluate_condition({"DateLessThan": {"aws:CurrentTime": "soon"}}, now=NOW)
    with pytest.raises(ConditionError, match="IpAddress"):
        evaluate_condition({"IpAddress": {"aws:SourceIp": "10.0.0.300/8"}}, {"aws:SourceIp": "1"})
    with pytest.raises(ConditionError, match="Bool"):
        evaluate_condition({"Bool": {"aws:SecureTransport": "maybe"}}, {"aws:SecureTransport": 1})


def test_parse_date() -> None:
    assert parse_date("2026-06-01T12:00:00Z") == NOW
    assert parse_date(str(int(NOW.timestamp()))) == NOW
    assert parse_date(NOW.replace(tzinfo=None)) == NOW
    assert parse_date("2026-06-01") == datetime(2026, 6, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_date("June")


@given(st.text(alphabet="abc*?", max_size=6), st.text(alphabet="abc", max_size=6))
def test_negated_operators_are_the_complement(pattern: str, value: str) -> None:
    ctx = {"k:v": value}
    for positive, negated in (("StringLike", "StringNotLike"), ("StringEquals", "StringNotEquals")):
        assert truth({positive: {"k:v": pattern}}, ctx) is ~truth({negated: {"k:v": pattern}}, ctx)
    if "*" not in pattern and "?" not in pattern:  # without wildcards, Like is Equals
        like = truth({"StringLike": {"k:v": pattern}}, ctx)
        assert like is truth({"StringEquals": {"k:v": pattern}}, ctx)
