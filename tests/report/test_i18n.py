from __future__ import annotations

from typing import Any

from ecsguard.core.models import Pillar, Severity, Status
from ecsguard.report import i18n


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_shape(v) for v in value)
    return type(value).__name__


def test_both_languages_have_the_same_keys_and_shapes() -> None:
    assert _shape(i18n.EN) == _shape(i18n.JA)


def test_every_enum_value_is_named() -> None:
    for strings in i18n.LANGUAGES.values():
        assert set(strings["severities"]) == {s.value for s in Severity}
        assert set(strings["pillars"]) == {p.value for p in Pillar}
        assert set(strings["statuses"]) == {s.value for s in Status}
        assert set(strings["sr_pillar_items"]) == {p.value for p in Pillar}
        for key in i18n.LINKS:
            assert isinstance(strings[key], str)


def test_lookup_helpers() -> None:
    assert i18n.label("ja", "severities", "high") == "高"
    assert i18n.label("en", "statuses", "unknown") == "unknown"
    assert i18n.text("fr", "title") == i18n.EN["title"]
