"""Fixtures shared by the detection tests."""

from __future__ import annotations

import pytest

import ecsguard.detect.eventpattern.prefilter as prefilter
import ecsguard.detect.filterset as filterset


@pytest.fixture(params=["native", "python"])
def json_readers(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A test run twice: JSON fields read by json_native.cpp (when built), and by Python (the
    event-pattern prefilter's leaves and the filter set's selectors both)."""
    if request.param == "python":
        monkeypatch.setattr(prefilter, "LEAVES", None)
        monkeypatch.setattr(filterset, "JSON", None)
    elif prefilter.LEAVES is None or filterset.JSON is None:
        pytest.skip("the native JSON reader is not built")
    return str(request.param)
