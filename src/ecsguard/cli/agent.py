"""`ecsguard agent`: the task metadata sidecar (ecsguard.monitor.agent)."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

import click
from rich.text import Text

from ecsguard.cli.common import stderr
from ecsguard.core.errors import UserError
from ecsguard.logs.query.timerange import parse_duration
from ecsguard.monitor.agent import ENV_METADATA, Agent, AgentSettings


@click.command()
@click.option(
    "--server",
    envvar="ECSGUARD_SERVER",
    help="The `ecsguard serve` URL to post to (also $ECSGUARD_SERVER).",
)
@click.option(
    "--token",
    envvar="ECSGUARD_TOKEN",
    help="Bearer token of the server (prefer $ECSGUARD_TOKEN: arguments show in `ps`).",
)
@click.option("--interval", default="10s", show_default=True, help="Time between rounds: 10s, 1m.")
@click.option(
    "--metadata-uri",
    envvar=ENV_METADATA,
    help=f"Task metadata endpoint v4 (ECS sets ${ENV_METADATA} in every container).",
)
@click.option(
    "--max-buffered",
    type=click.IntRange(1, 10_000_000),
    default=10_000,
    show_default=True,
    help="Datapoints kept while the server is unreachable; the oldest go first.",
)
@click.option("--once", is_flag=True, help="One round, then exit (1 if anything failed).")
def agent(
    server: str | None,
    token: str | None,
    interval: str,
    metadata_uri: str | None,
    max_buffered: int,
    once: bool,
) -> None:
    """Sidecar: post the task's container CPU, memory and network metrics to a server.

    Reads the ECS task metadata endpoint v4 (`/task` and `/task/stats`) every --interval and
    posts namespace ecsguard/Task datapoints (dimensions ClusterName, TaskDefinitionFamily,
    TaskId, ContainerName) to the server's /ingest/metrics. An unreachable endpoint or server
    is a one-line message and the agent keeps going; datapoints wait in a bounded buffer.

    \b
    Examples:
      ECSGUARD_SERVER=https://ecsguard.internal:8080 ECSGUARD_TOKEN=... ecsguard agent
      ecsguard agent --server http://127.0.0.1:8080 --once
    """
    if not server:
        raise UserError(
            "no server to post to", "give --server URL or set ECSGUARD_SERVER (ecsguard serve)"
        )
    if not server.startswith(("http://", "https://")):
        raise UserError(f"--server {server!r} is not an http(s) URL", "e.g. http://host:8080")
    seconds = parse_duration(interval).total_seconds()
    if seconds < 1:
        raise UserError(f"--interval {interval} is too short", "use 1s or more")
    settings = AgentSettings(
        server=server,
        token=token or None,
        metadata_uri=metadata_uri or None,
        interval=seconds,
        max_buffered=max_buffered,
    )

    def say(line: str) -> None:
        stderr.print(Text(f"ecsguard agent: {line}"))  # endpoint texts are never markup

    runner = Agent(settings, say)
    try:
        if once:
            result = runner.round()
            stderr.print(
                f"ecsguard agent: {result.collected} datapoint(s) read, {result.sent} sent"
            )
            sys.exit(0 if result.ok else 1)
        stop = threading.Event()
        # ECS stops a task with SIGTERM: end the wait, leave cleanly
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        say(f"posting to {server} every {interval}")
        with contextlib.suppress(KeyboardInterrupt):
            runner.run(stop)
    finally:
        runner.close()
