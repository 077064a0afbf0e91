"""Bad input gets one clear line naming the problem and what to do: no traceback, non-zero exit."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def ecsguard(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    base.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
    )
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ecsguard", *args],
        capture_output=True,
        text=True,
        env=base,
        timeout=60,
    )


def assert_one_clear_error(run: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    for needle in needles:
        assert needle in run.stderr, run.stderr


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unknown_region_suggests_the_right_one() -> None:
    run = ecsguard(
        "inventory",
        "--region",
        "ap-northeast-9x",
        "--region",
        "ap-northeest-1",
        "--endpoint-url",
        f"http://127.0.0.1:{closed_port()}",
    )
    assert_one_clear_error(run, "unknown AWS region", "ap-northeast-9x")


def test_typo_region_gets_a_suggestion(moto_server) -> None:  # type: ignore[no-untyped-def]
    run = ecsguard(
        "inventory", "--region", "ap-northeest-1", "--endpoint-url", moto_server.endpoint
    )
    assert_one_clear_error(
        run, "unknown AWS region 'ap-northeest-1'", "did you mean ap-northeast-1?"
    )


def test_missing_profile() -> None:
    run = ecsguard("inventory", "--profile", "no-such-profile", "--region", "ap-northeast-1")
    assert_one_clear_error(run, "AWS profile 'no-such-profile' not found", "~/.aws/config")


def test_no_region() -> None:
    run = ecsguard("inventory", "--endpoint-url", f"http://127.0.0.1:{closed_port()}")
    assert_one_clear_error(run, "no AWS region given", "--region")


def test_unreachable_endpoint() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    run = ecsguard("inventory", "--region", "ap-northeast-1", env={"AWS_ENDPOINT_URL": url})
    assert_one_clear_error(run, f"cannot reach {url}", "AWS_ENDPOINT_URL")
    assert run.returncode == 3


def test_no_credentials() -> None:
    run = ecsguard(
        "inventory",
        "--region",
        "ap-northeast-1",
        "--endpoint-url",
        f"http://127.0.0.1:{closed_port()}",
        env={
            "AWS_ACCESS_KEY_ID": "",
            "AWS_SECRET_ACCESS_KEY": "",
            "AWS_EC2_METADATA_DISABLED": "true",
        },
    )
    assert_one_clear_error(run, "no AWS credentials found")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"\x00\x01 not a snapshot", "not valid JSON"),
        (b'{"format": "ecsguard-snapshot", "version": 7, "account": "1"}', "newer than this"),
    ],
)
def test_bad_snapshot_for_diff(tmp_path: Path, content: bytes, needle: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    run = ecsguard("inventory", "diff", str(bad), str(bad))
    assert_one_clear_error(run, needle, str(bad))


def test_help_lists_the_commands() -> None:
    run = ecsguard("--help")
    assert run.returncode == 0
    for command in ("inventory", "iam", "demo"):
        assert command in run.stdout
