"""`ecsguard serve` as a child process on a free loopback port: the demo's log server, and the
server the durability tests kill.

The child is the real command, so everything reaches it over HTTP as FireLens would. Its output is
read by a thread (a chatty server never blocks on a full pipe) and kept for error messages.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from ecsguard.core.errors import UserError

START_TIMEOUT = 30.0
_LISTENING = re.compile(r"listening on (https?://\S+)")


class ServeProcess:
    """Start with `with ServeProcess(data_dir) as server:`; `server.url` is where it listens."""

    def __init__(
        self,
        data_dir: Path,
        *,
        flush_seconds: float = 1.0,
        args: Sequence[str] = (),
    ) -> None:
        command = [
            sys.executable,
            "-m",
            "ecsguard",
            "serve",
            "--port",
            "0",
            "--forward-port",
            "0",
            "--data-dir",
            str(data_dir),
            "--flush-seconds",
            str(flush_seconds),
            *args,
        ]
        self.proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.output: deque[str] = deque(maxlen=200)
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.url = self._wait_for_url()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _wait_for_url(self) -> str:
        try:
            while True:
                line = self._lines.get(timeout=START_TIMEOUT)
                if line is None:
                    break
                match = _LISTENING.search(line)
                if match:
                    return match[1]
        except queue.Empty:
            pass
        self.kill()
        raise UserError(
            "the log server did not start: " + "".join(self.output)[-2000:],
            "run `ecsguard serve` by hand to see why",
        )

    def kill(self) -> None:
        """SIGKILL: what a crash or the OOM killer does."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> int:
        """SIGTERM: a graceful stop (flushes everything acknowledged); the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.terminate()
