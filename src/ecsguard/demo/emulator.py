"""A real moto server in a subprocess on a free loopback port: the demo's and the tests' AWS.

The server is a separate process, so everything talks to it over HTTP exactly as it would talk to
AWS (boto3, the AWS CLI, Terraform, ecsguard itself), and it dies with `stop()` or the `with`
block. Its output goes to a temporary log file, never a pipe, so a chatty server cannot block.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

from ecsguard.core.errors import UserError

REGION = "ap-northeast-1"
ACCOUNT_ID = "123456789012"  # what moto reports for any credentials
START_TIMEOUT = 20.0


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the OS picks it when binding to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def set_transition(endpoint: str, model_name: str, transition: Mapping[str, object]) -> None:
    """Configure how a moto model's status advances (moto's state manager, over HTTP).

    Example: `{"progression": "manual", "times": 10**9}` keeps ECS tasks RUNNING however often they
    are described (by default each DescribeTasks moves a running task one step towards STOPPED).
    """
    body = json.dumps({"model_name": model_name, "transition": dict(transition)}).encode()
    request = urllib.request.Request(
        f"{endpoint.rstrip('/')}/moto-api/state-manager/set-transition",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10):
            pass
    except (urllib.error.URLError, OSError) as err:
        raise UserError(
            f"cannot configure the emulated AWS server at {endpoint}: {err}",
            "is it a moto server? (`ecsguard demo` starts one)",
        ) from None


class MotoServer:
    """`with MotoServer() as server:` gives a running emulated account at `server.endpoint`."""

    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        *,
        start_timeout: float = START_TIMEOUT,
        command: Sequence[str] | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.start_timeout = start_timeout
        self.command = (
            list(command)
            if command
            else [
                sys.executable,
                "-m",
                "moto.server",
                "-H",
                host,
                "-p",
                str(self.port),
            ]
        )
        self.log_path: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # -- what clients need ------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def env(self) -> dict[str, str]:
        """Environment variables that point any AWS SDK or tool at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
        }

    def env_lines(self) -> list[str]:
        """`export K=V` lines a user can paste into a shell."""
        return [f"export {key}={value}" for key, value in self.env().items()]

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> MotoServer:
        if self.running:
            return self
        env = dict(os.environ)
        env["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
        log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the server
            prefix=f"ecsguard-moto-{self.port}-", suffix=".log", delete=False
        )
        self._log = log
        self.log_path = Path(log.name)
        try:
            self._proc = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        except OSError as err:
            self.stop()
            raise UserError(
                f"cannot start the emulated AWS server on port {self.port}: {err.strerror or err}",
                "check that moto[server] is installed in this Python environment",
            ) from None
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        url = f"{self.endpoint}/moto-api/"
        deadline = time.monotonic() + self.start_timeout
        delay = 0.05
        while True:
            assert self._proc is not None
            code = self._proc.poll()
            if code is not None:
                tail = self.log_tail()
                self.stop()
                raise UserError(
                    f"the emulated AWS server on port {self.port} exited with status {code}"
                    + (f": {tail}" if tail else ""),
                    "check that moto[server] is installed and that the port is free",
                )
            if self._answers(url) and self._listening():
                return
            if time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise UserError(
                    f"the emulated AWS server on port {self.port} did not answer within "
                    f"{self.start_timeout:.0f} s" + (f": {tail}" if tail else ""),
                    "check that nothing else holds the port and that moto[server] works",
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                return bool(reply.status < 500)
        except urllib.error.HTTPError as err:
            return err.code < 500
        except (urllib.error.URLError, OSError):
            return False

    def _listening(self) -> bool:
        """Our process says it listens: the answer did not come from another program's server."""
        if self.log_path is None:
            return False
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
        return "Running on" in text

    def log_tail(self, lines: int = 3, width: int = 300) -> str:
        """The last lines the server wrote, joined on one line (for error messages)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        tail = " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])
        return tail[-width:]

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the server (kill it if it lingers) and remove its log file."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        self._close_log()
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
