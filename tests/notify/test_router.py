from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta

from ecsguard.notify.config import Silence, parse_config
from ecsguard.notify.router import (
    Delivery,
    Router,
    dedup_key,
    group_key,
    silenced_by,
    throttle_slot,
)

from .conftest import T0, make_alert

CONFIG = textwrap.dedent(
    """\
    channels:
      pager: {type: command, command: {argv: [pager]}}
      sec: {type: command, command: {argv: [sec]}}
      mail: {type: command, command: {argv: [mail]}}
    routes:
      - match: {severity: [critical]}
        channels: [pager]
        continue: true
      - match: {rules: ["iam-*", "cloudtrail-*"], tags: [security, audit]}
        channels: [sec, pager]
        group_wait: 2m
      - match: {min_severity: medium}
        channels: [mail]
        group_wait: 30s
    default: {channels: [mail], group_wait: 5m}
    """
)


def channels_for(**fields: object) -> list[Delivery]:
    return Router(parse_config(CONFIG)).deliveries(make_alert(**fields))  # type: ignore[arg-type]


def test_first_matching_route_wins() -> None:
    assert channels_for(severity="high", tags=["ecs"]) == [Delivery("mail", 30.0)]


def test_rule_globs_and_tags_must_both_match() -> None:
    assert channels_for(rule_id="iam-role-changed", severity="low", tags=["audit"]) == [
        Delivery("sec", 120.0),
        Delivery("pager", 120.0),
    ]
    # the rule matches but no tag does: falls through to the severity route / default
    assert channels_for(rule_id="iam-role-changed", severity="low", tags=[]) == [
        Delivery("mail", 300.0)
    ]


def test_continue_collects_later_routes_once_per_channel_with_the_shorter_wait() -> None:
    assert channels_for(rule_id="cloudtrail-stopped", severity="critical", tags=["security"]) == [
        Delivery("pager", 0.0),
        Delivery("sec", 120.0),
    ]


def test_the_default_route_takes_what_no_route_matched() -> None:
    assert channels_for(severity="info") == [Delivery("mail", 300.0)]


def test_no_default_means_nowhere() -> None:
    config = parse_config("channels: {m: {type: command, command: {argv: [x]}}}")
    assert Router(config).deliveries(make_alert()) == []


def silence(**fields: object) -> Silence:
    base: dict[str, object] = {
        "rule": "ecs-*",
        "expires": T0 + timedelta(hours=1),
        "reason": "load test",
        "by": "alice",
    }
    return Silence.model_validate({**base, **fields})


def test_silences_match_rule_globs_and_key_globs_until_they_expire() -> None:
    alert = make_alert(key=["prod", "web", 7])
    assert silenced_by([silence()], alert, T0) is not None
    assert silenced_by([silence(key=["prod"])], alert, T0) is not None
    assert silenced_by([silence(key=["prod", "w*", "7"])], alert, T0) is not None
    assert silenced_by([silence(key=["staging"])], alert, T0) is None
    assert silenced_by([silence(key=["prod", "web", "7", "x"])], alert, T0) is None
    assert silenced_by([silence(rule="iam-*")], alert, T0) is None
    # expiry: active just before, not at the instant
    expires = T0 + timedelta(hours=1)
    assert silenced_by([silence()], alert, expires - timedelta(seconds=1)) is not None
    assert silenced_by([silence()], alert, expires) is None


def test_naive_expiry_times_are_utc() -> None:
    s = silence(expires=datetime(2026, 11, 28, 10, 0))
    assert s.expires == datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def test_group_and_dedup_keys() -> None:
    a, b = make_alert("1"), make_alert("2")
    assert group_key(a) == group_key(b)
    assert group_key(a) != group_key(make_alert("3", key=["prod", "api"]))
    assert group_key(a) != group_key(make_alert("4", rule_id="other"))
    assert dedup_key(a) != dedup_key(b)
    # an alarm moving to OK is news, the same alarm state again is not
    assert dedup_key(make_alert("x", state="ALARM")) != dedup_key(make_alert("x", state="OK"))
    assert dedup_key(make_alert("x", state="OK")) == dedup_key(make_alert("x", state="OK"))


def test_throttle_slot() -> None:
    now = 1000.0
    assert throttle_slot([], 2, now) == now
    assert throttle_slot([990.0], 2, now) == now
    assert throttle_slot([950.0, 990.0], 2, now) == 1010.0  # the older one leaves at 950 + 60
    assert throttle_slot([900.0, 950.0, 990.0], 2, now) == 1010.0  # 900 is already out
