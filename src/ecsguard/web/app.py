"""The app factory and the uvicorn runner behind `ecsguard serve`.

`create_app(settings, service)` wires the routes to one LogService and a TailHub listening to it.
The lifespan starts the service (replaying what a previous process left in the WAL), starts the
Fluentd forward server when asked, and on shutdown stops both: every acknowledged record is then
flushed to Parquet. `run` serves the app until SIGTERM or Ctrl-C and returns normally (exit 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.middleware.trustedhost import TrustedHostMiddleware

from ecsguard.detect.worker import DetectionWorker
from ecsguard.logs.records import ReceiverOptions
from ecsguard.logs.service import LogService
from ecsguard.logs.tail import DEFAULT_CAPACITY, TailHub
from ecsguard.monitor.emf import EmfExtractor
from ecsguard.notify.dispatcher import Dispatcher
from ecsguard.web import api, console, ingest, metrics
from ecsguard.web.auth import ApiError
from ecsguard.web.users import UserStore

if TYPE_CHECKING:
    from ecsguard.detect.reloader import RuleReloader  # loads every rule type

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 32 * 1024 * 1024
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
#: seconds in-flight requests get to finish after SIGTERM before they are cancelled
GRACEFUL_SECONDS = 30


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None
    max_body: int = DEFAULT_MAX_BODY
    forward_port: int = 0  # 0: no Fluentd forward server
    #: constants and multiline joining for every forward-protocol record
    forward_options: ReceiverOptions = field(default_factory=ReceiverOptions)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tail_capacity: int = DEFAULT_CAPACITY
    #: requests read and parsed at once; with --max-body this bounds the memory bodies take
    #: (parsing is CPU-bound: more slots than a few cores only add memory)
    ingest_slots: int = 4

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def ssl_context(settings: ServerSettings) -> ssl.SSLContext | None:
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


async def _start_forward(
    service: LogService, settings: ServerSettings, announce: Callable[[str], None]
) -> asyncio.Server | None:
    if not settings.forward_port:
        return None
    from ecsguard.logs.forward_server import start_forward_server

    server = await start_forward_server(
        service,
        settings.host,
        settings.forward_port,
        shared_key=settings.token,
        ssl=ssl_context(settings),
        options=settings.forward_options,
    )
    port = server.sockets[0].getsockname()[1] if server.sockets else settings.forward_port
    announce(f"forward protocol (Fluentd/Fluent Bit `forward`) on {settings.host}:{port}")
    return server


#: how often the metric rollups (1 minute, 5 minutes, 1 hour) catch up
ROLLUP_SECONDS = 300


async def _roll_up_metrics(service: LogService) -> None:
    """Keep metrics_1m / 5m / 1h current, off the event loop; a failure waits for the next round."""
    from datetime import UTC, datetime

    from ecsguard.monitor.rollups import rollup

    while True:
        await asyncio.sleep(ROLLUP_SECONDS)
        try:
            await run_in_threadpool(
                rollup, service.data_dir, datetime.now(UTC), store=service.location
            )
        except Exception:  # a full disk or a damaged file: logged, retried next round
            log.exception("metric rollup failed; retrying in %s s", ROLLUP_SECONDS)


def create_app(
    settings: ServerSettings,
    service: LogService,
    announce: Callable[[str], None] = lambda line: None,
    detection: DetectionWorker | None = None,
    dispatcher: Dispatcher | None = None,
    reloader: RuleReloader | None = None,
) -> FastAPI:
    """The FastAPI app around `service`; `announce` receives human-readable status lines;
    `detection` (optional) evaluates rules on every stored batch; `dispatcher` (optional, else
    the detection's) is the notification dispatcher the console silences and test-sends with;
    `reloader` (optional) reads detection's rule files again on POST /api/rules/reload."""
    hub = TailHub(settings.tail_capacity)
    service.add_listener(hub.publish)
    # EMF records among log lines (apps, Container Insights performance logs) are metrics too
    service.add_listener(EmfExtractor(service.store))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(service.start)
        if detection is not None:
            detection.start()
        forward = await _start_forward(service, settings, announce)
        rollups = asyncio.create_task(_roll_up_metrics(service))
        announce("ready")
        try:
            yield
        finally:
            rollups.cancel()
            hub.close()
            if forward is not None:
                forward.close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(forward.wait_closed(), 5)
            if detection is not None:
                await run_in_threadpool(detection.stop)
            await run_in_threadpool(service.stop)
            announce("stopped; every acknowledged record is flushed")

    app = FastAPI(
        title="ecsguard",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.service = service
    app.state.hub = hub
    app.state.detection = detection
    app.state.reloader = reloader
    app.state.kinesis = None  # `serve --kinesis-stream` sets its consumer here, for /metrics
    app.state.dispatcher = (
        dispatcher if dispatcher is not None else (detection.dispatcher if detection else None)
    )
    app.state.ingest_slots = asyncio.Semaphore(settings.ingest_slots)
    if settings.token is None and is_loopback(settings.host):
        # without a token only local clients may talk to us; checking Host stops a web page
        # from reaching this server through DNS rebinding
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=[*LOOPBACK_NAMES, "[::1]"])

    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError) -> JSONResponse:
        return JSONResponse({"error": err.message}, status_code=err.status, headers=err.headers)

    app.include_router(ingest.router)
    app.include_router(api.router)
    app.include_router(metrics.router)
    console.install(
        app,
        console.Console(
            service.data_dir, UserStore(service.data_dir), secure_cookies=bool(settings.tls_cert)
        ),
    )
    return app


class Server(uvicorn.Server):
    """uvicorn, ending live-tail streams first: they never end on their own, and uvicorn waits
    for open responses before it runs the lifespan shutdown."""

    def __init__(self, config: uvicorn.Config, hub: TailHub) -> None:
        super().__init__(config)
        self.hub = hub

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.hub.close()
        await super().shutdown(sockets)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free port), so the real address is known before start."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto given explicitly: asyncio sets TCP_NODELAY only on sockets that name IPPROTO_TCP,
    # and without it every keep-alive response waits ~40 ms for a delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def make_server(app: FastAPI, settings: ServerSettings) -> Server:
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,  # request lines at ingest rates are noise (and tokens stay out of logs)
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        server_header=False,
    )
    return Server(config, app.state.hub)


def run(server: Server, sock: socket.socket) -> None:
    """Serve until SIGTERM / SIGINT, shut down gracefully and return.

    uvicorn re-raises the signal that stopped it once it is done; our own handlers receive it,
    so a requested shutdown ends the process normally instead of by the default signal action.
    """
    previous: dict[signal.Signals, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, lambda *_: None)
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
