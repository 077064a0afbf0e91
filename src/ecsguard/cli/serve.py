"""`ecsguard serve`: the log receivers, the flusher, and the query and live-tail API."""

from __future__ import annotations

import contextlib
import re
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ecsguard.cli.common import (
    data_dir_option,
    make_store_location,
    stderr,
    stdout,
    store_option,
)
from ecsguard.core.config import data_dir as resolve_data_dir
from ecsguard.core.errors import UserError
from ecsguard.core.runtime import CpuPlan, tune_server_process

if TYPE_CHECKING:
    from ecsguard.detect.reloader import RuleReloader  # loads every rule type

_SIZE = re.compile(r"^\s*(\d+)\s*([a-z]*)\s*$", re.IGNORECASE)
_UNITS = {
    **{unit: 1 for unit in ("", "b")},
    **{unit: 1000 for unit in ("k", "kb")},
    **{unit: 1000**2 for unit in ("m", "mb")},
    **{unit: 1000**3 for unit in ("g", "gb")},
    **{"kib": 1024, "mib": 1024**2, "gib": 1024**3},
}


def parse_size(text: str) -> int:
    """`32MiB`, `500KB`, `1048576` as bytes (KiB/MiB/GiB are powers of 1024, KB/MB/GB of 1000)."""
    match = _SIZE.match(text)
    unit = match[2].lower() if match else ""
    if match is None or unit not in _UNITS:
        raise UserError(
            f"cannot read the size {text!r}", "write bytes or a unit: 1048576, 32MiB, 1GB"
        )
    size = int(match[1]) * _UNITS[unit]
    if size < 1024:
        raise UserError(f"--max-body {text} is too small", "allow at least 1KiB")
    return size


def _run_beside(app: Any, consumer: Any) -> None:
    """Start `consumer` once the app's lifespan has started the log service, stop it before the
    service stops (so its last batches are flushed with everything else)."""
    from starlette.concurrency import run_in_threadpool

    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        async with inner(app) as state:
            await run_in_threadpool(consumer.start)
            try:
                yield state
            finally:
                await run_in_threadpool(consumer.stop)

    app.router.lifespan_context = lifespan


def _reload_on_sighup(reloader: RuleReloader) -> None:
    """SIGHUP reads the rules again, in a thread (the handler runs on the event loop's thread,
    which must not wait for YAML and Sigma): all valid, detection goes on with them; any error,
    the running rules stay and the errors are printed with their file:line."""
    import signal
    import threading

    def reload() -> None:
        done = reloader.reload()
        if not done.ok:
            problems = "\n  ".join(done.problems)
            stderr.print(
                f"ecsguard serve: rules not reloaded, {len(done.problems)} problem(s); the "
                f"running rules stay:\n  {problems}",
                markup=False,
                highlight=False,
            )
            return
        stdout.print(
            f"ecsguard serve: rules reloaded, {done.enabled} enabled",
            markup=False,
            highlight=False,
        )

    def on_hangup(signum: int, frame: Any) -> None:
        threading.Thread(target=reload, name="ecsguard-reload-rules", daemon=True).start()

    signal.signal(signal.SIGHUP, on_hangup)


def _console_users_note(directory: Path) -> str:
    from ecsguard.web.users import UserStore

    store = UserStore(directory)
    try:
        count = len(store.users())
    finally:
        store.close()
    if count:
        return f"{count} user{'s' if count != 1 else ''}; manage them with `ecsguard users`"
    return "no users yet: `ecsguard users add NAME --role admin` to log in"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="HTTP port."
)
@click.option(
    "--forward-port",
    type=click.IntRange(0, 65535),
    default=24224,
    show_default=True,
    help="Fluentd forward protocol port (FireLens `forward` output); 0 disables it.",
)
@click.option(
    "--multiline",
    is_flag=True,
    help="Forward protocol: join stack traces (Java and Python) within each message. "
    "(HTTP: /ingest/lines?multiline=true per request.)",
)
@click.option(
    "--multiline-start",
    "multiline_start",
    metavar="REGEX",
    help="Forward protocol: a line matching this (RE2, from its start) begins a record; the "
    "other lines continue it. Implies --multiline.",
)
@click.option(
    "--token",
    envvar="ECSGUARD_TOKEN",
    help="Bearer token clients must send (prefer $ECSGUARD_TOKEN: arguments show in `ps`). "
    "Required unless --host is a loopback address.",
)
@click.option("--tls-cert", type=click.Path(dir_okay=False), help="TLS certificate (PEM).")
@click.option("--tls-key", type=click.Path(dir_okay=False), help="TLS private key (PEM).")
@data_dir_option
@store_option
@click.option(
    "--flush-seconds",
    type=click.FloatRange(0.05, 3600),
    default=60.0,
    show_default=True,
    help="A WAL segment is flushed to Parquet when it is full (64 MiB) or this many seconds "
    "old. Queries and the live tail see records before that; Athena sees flushed ones.",
)
@click.option(
    "--compact-seconds",
    type=click.FloatRange(1, 86400),
    default=300.0,
    show_default=True,
    help="How often small Parquet files are merged and retention is applied.",
)
@click.option(
    "--rules",
    "rule_paths",
    multiple=True,
    type=str,
    help="Detection rule file or directory, or builtin:ecs-operations (repeatable); they run "
    "in a second process beside the server, and alerts go to DATA_DIR/detect.db. SIGHUP or "
    "`ecsguard rules reload` reads them again (if any is invalid, the running rules stay).",
)
@click.option(
    "--notify",
    "notify_config",
    type=click.Path(exists=True, dir_okay=False),
    help="Notification channels and routes (docs/notify.md); alerts of --rules are sent there.",
)
@click.option(
    "--max-body",
    default="32MiB",
    show_default=True,
    help="Largest request body, compressed or not; larger ones get 413.",
)
@click.option(
    "--kinesis-stream",
    help="Also consume this Kinesis data stream (CloudWatch Logs subscription records or raw "
    "lines), sharing its shards with every ecsguard serve given the same stream.",
)
@click.option(
    "--kinesis-lease-table",
    help="DynamoDB table of the shard leases and checkpoints (created if missing). "
    "Default: ecsguard-kinesis-STREAM.",
)
@click.option(
    "--kinesis-lease-seconds",
    type=click.FloatRange(1, 600),
    default=10.0,
    show_default=True,
    help="A worker silent this long loses its shards to the others.",
)
@click.option(
    "--pin-threads/--no-pin-threads",
    default=True,
    show_default=True,
    help="Keep the server's Python threads on one CPU and the detection process on another, "
    "the two idlest at start (with two CPUs or more; printed at start): they take turns on "
    "Python's lock anyway, and moving between cores cost about a tenth more CPU per megabyte. "
    "DuckDB's query threads use every CPU. --no-pin-threads leaves placement to the kernel "
    "(a host whose load shifts).",
)
@click.option("--profile", envvar="AWS_PROFILE", help="Named profile from ~/.aws/config.")
@click.option(
    "--region", help="Region of the Kinesis stream and the S3 store (default: the profile's)."
)
@click.option(
    "--endpoint-url",
    envvar="AWS_ENDPOINT_URL",
    help="Send AWS calls here (an emulator such as moto). Also AWS_ENDPOINT_URL.",
)
def serve(
    host: str,
    port: int,
    forward_port: int,
    multiline: bool,
    multiline_start: str | None,
    token: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    data_dir: str | None,
    store: str | None,
    flush_seconds: float,
    compact_seconds: float,
    rule_paths: tuple[str, ...],
    notify_config: str | None,
    max_body: str,
    kinesis_stream: str | None,
    kinesis_lease_table: str | None,
    kinesis_lease_seconds: float,
    pin_threads: bool,
    profile: str | None,
    region: str | None,
    endpoint_url: str | None,
) -> None:
    """Receive logs over the network and answer queries and live tails.

    Receivers: POST /ingest/firelens (Fluent Bit `http` output, json_lines or json, gzip),
    /ingest/firehose (Amazon Data Firehose HTTP endpoint, CloudWatch Logs subscriptions),
    /ingest/cloudwatch, /ingest/cloudtrail, /ingest/ecs-events, /ingest/lines; the Fluentd
    forward protocol on --forward-port; with --kinesis-stream, a Kinesis consumer (shard leases
    and checkpoints in DynamoDB, shared with other ecsguard serve processes). API: /api/query,
    /api/tail (server-sent events), /api/stats, /metrics (Prometheus), /healthz. The web
    console is at / (log in as a user from `ecsguard users add`). A record is acknowledged only
    once it is fsynced; SIGTERM flushes everything acknowledged to Parquet and exits 0.

    \b
    Examples:
      ecsguard serve                                   # 127.0.0.1:8080, no token needed
      ECSGUARD_TOKEN=s3cret ecsguard serve --host 0.0.0.0 --tls-cert c.pem --tls-key k.pem
      curl -X POST --data-binary @app.log 'http://127.0.0.1:8080/ingest/lines?service=api'
    """
    from ecsguard.logs.multiline import compile_start
    from ecsguard.logs.receivers.firelens import parser_note as firelens_parser_note
    from ecsguard.logs.records import ReceiverOptions
    from ecsguard.logs.service import LogService
    from ecsguard.web.app import (
        ServerSettings,
        bind,
        create_app,
        is_loopback,
        make_server,
        run,
        ssl_context,
    )

    token = token or None
    if token is None and not is_loopback(host):
        raise UserError(
            f"refusing to listen on {host} without a token",
            "pass --token or set ECSGUARD_TOKEN; clients send 'Authorization: Bearer <token>'",
        )
    if bool(tls_cert) != bool(tls_key):
        raise UserError("--tls-cert and --tls-key go together", "give both files, or neither")
    if multiline_start:
        compile_start(multiline_start)  # a bad pattern is an error before we listen
    settings = ServerSettings(
        host=host,
        port=port,
        token=token,
        max_body=parse_size(max_body),
        forward_port=forward_port,
        forward_options=ReceiverOptions(multiline=multiline, multiline_start=multiline_start),
        tls_cert=Path(tls_cert) if tls_cert else None,
        tls_key=Path(tls_key) if tls_key else None,
    )
    try:
        ssl_context(settings)  # read the files now: a bad one is an error before we listen
    except (OSError, ssl.SSLError) as exc:
        raise UserError(
            f"cannot load the TLS certificate or key: {exc}", "give PEM files"
        ) from None
    try:
        if forward_port:
            bind(host, forward_port).close()  # in use: say so now, not from inside the server
    except OSError as exc:
        raise UserError(
            f"cannot listen on {host}:{forward_port}: {exc.strerror or exc}",
            "pick another --forward-port (0 disables it) or stop the process using it",
        ) from None
    try:
        sock = bind(host, port)
    except OSError as exc:
        raise UserError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            "pick another --port (0 takes any free one) or stop the process using it",
        ) from None

    directory = resolve_data_dir(data_dir)
    detection_rules = []
    if rule_paths:
        from ecsguard.detect.loader import load_rules

        loaded = load_rules(rule_paths)
        loaded.raise_errors()  # before listening: a bad rule file is an error, not a surprise
        detection_rules = loaded.rules
    dispatcher = None
    if notify_config:
        from ecsguard.notify.config import load_config
        from ecsguard.notify.dispatcher import Dispatcher

        dispatcher = Dispatcher(load_config(notify_config), directory)
    location = make_store_location(store, endpoint_url, profile, region)
    service = LogService(
        directory, flush_seconds=flush_seconds, compact_seconds=compact_seconds, store=location
    )
    cpus = CpuPlan.choose(pin_threads)
    detection = reloader = None
    if rule_paths:  # even with no rule enabled yet: a reload may bring some
        from ecsguard.detect.reloader import RuleReloader
        from ecsguard.detect.worker import DetectionWorker

        detection = DetectionWorker(
            service, detection_rules, directory / "detect.db", dispatcher, cpus.detection
        )
        reloader = RuleReloader(rule_paths, detection)
        _reload_on_sighup(reloader)

    def announce(line: str) -> None:
        stdout.print(line, markup=False, highlight=False)

    app = create_app(settings, service, announce, detection, dispatcher, reloader)
    if kinesis_stream:
        from ecsguard.aws.session import AwsOptions, AwsSession
        from ecsguard.logs.kinesis.consumer import ConsumerSettings, KinesisConsumer

        aws = AwsSession(
            AwsOptions(
                profile=profile or None,
                regions=(region,) if region else (),
                endpoint_url=endpoint_url or None,
                max_attempts=3,  # then the consumer backs off per shard, with jitter
                retry_mode="standard",
            )
        )
        consumer = KinesisConsumer(
            aws,
            service,
            ConsumerSettings(
                kinesis_stream,
                lease_table=kinesis_lease_table,
                lease_seconds=kinesis_lease_seconds,
            ),
            announce,
        )
        consumer.check_stream()  # a missing stream is an error before we listen
        _run_beside(app, consumer)
        app.state.kinesis = consumer
    address = sock.getsockname()
    shown_host = f"[{address[0]}]" if ":" in address[0] else address[0]
    base = f"{settings.scheme}://{shown_host}:{address[1]}"
    where = f"data in {directory}" + (f", store {store}" if location else "")
    announce(f"ecsguard serve: listening on {base} ({where})")
    announce(
        f"  receivers: {base}/ingest/{{firelens,firehose,cloudwatch,cloudtrail,ecs-events,lines}}"
    )
    announce(f"  API: {base}/api/query, {base}/api/tail, {base}/api/stats, {base}/metrics")
    announce(f"  console: {base}/ ({_console_users_note(directory)})")
    if detection is not None:
        from ecsguard.detect.eventpattern.prefilter import reader_note

        announce(
            f"  detection: {len(detection.rules)} rules (SIGHUP or `rules reload` reloads them); "
            "alerts: ecsguard rules alerts"
        )
        announce(f"  {reader_note()}")
    if dispatcher is not None:
        announce(f"  notifications: {', '.join(dispatcher.config.channels)}")
    announce(f"  {cpus.describe(detection is not None)}")
    announce(f"  {firelens_parser_note()}")
    announce(
        "  a token is required: clients send 'Authorization: Bearer <token>'"
        if token
        else "  no token: loopback clients only"
    )
    server = make_server(app, settings)
    tune_server_process(cpus.server)
    run(server, sock)
