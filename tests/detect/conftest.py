"""Fixtures shared by the detection tests."""

from __future__ import annotations

import pytest

import ecsguard.detect.eventpattern.prefilter as prefilter
import ecsguard.detect.filterset as filterset


@pytest.fixture(params=["native", "python"])
def json_readers(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A test run twice: with the native helpers (when built) and in Python: JSON fields read
    by json_native.cpp (the event-pattern prefilter's leaves, the filter set's selectors) and
    the filter set's terms searched by firelens_native.cpp."""
    if request.param == "python":
        monkeypatch.setattr(prefilter, "LEAVES", None)
        monkeypatch.setattr(filterset, "JSON", None)
        monkeypatch.setattr(filterset, "SEARCH", None)
    elif prefilter.LEAVES is None or filterset.JSON is None or filterset.SEARCH is None:
        pytest.skip("the native helpers are not built")
    return str(request.param)
