"""Shared fixtures: one emulated AWS account (a real moto server) per test session.

`moto_server` starts the server; `seeded` creates the demo estate in it once; `aws_env` points the
standard AWS environment variables at it for one test. Tests never reach real AWS: the session
fixture replaces the credentials with moto's dummies and drops AWS_PROFILE for the whole run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from ecsguard.aws.session import AwsOptions, AwsSession
from ecsguard.demo.emulator import REGION, MotoServer
from ecsguard.demo.seed import load_estate, seed

# set for the session: dummy credentials and a region, so nothing can fall back to a real profile
_SESSION_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_DEFAULT_REGION")
_DROPPED_ENV = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    saved = {name: os.environ.get(name) for name in (*_SESSION_ENV, *_DROPPED_ENV)}
    with MotoServer() as server:
        env = server.env()
        for name in _SESSION_ENV:
            os.environ[name] = env[name]
        for name in _DROPPED_ENV:
            os.environ.pop(name, None)
        try:
            yield server
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


@pytest.fixture
def aws_env(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """Point AWS_ENDPOINT_URL and friends at the session's server for this test."""
    for name, value in moto_server.env().items():
        monkeypatch.setenv(name, value)
    for name in _DROPPED_ENV:
        monkeypatch.delenv(name, raising=False)
    return moto_server


@pytest.fixture(scope="session")
def seeded(moto_server: MotoServer) -> tuple[MotoServer, dict[str, Any]]:
    """The session's server with the demo estate in it, and the seeding summary."""
    session = AwsSession(AwsOptions(regions=(REGION,), endpoint_url=moto_server.endpoint))
    return moto_server, seed(session, load_estate())


@pytest.fixture(scope="session")
def demo_snapshot(seeded: tuple[MotoServer, dict[str, Any]]) -> Any:
    """The seeded estate collected once by the real collectors (read-only for tests)."""
    from ecsguard.aws.collect import collect

    server, _ = seeded
    return collect(AwsSession(AwsOptions(regions=(REGION,), endpoint_url=server.endpoint)))
