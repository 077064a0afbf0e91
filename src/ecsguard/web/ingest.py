"""Receiver routes: `POST /ingest/<receiver>` wraps the parse functions of RECEIVERS.

A request is read (bounded by `max_body`, compressed and decompressed), parsed and handed to
`LogService.accept` in the threadpool, so concurrent requests share WAL fsyncs (group commit).
A 2xx answer is sent only after `accept` returned: the records are durable.

Answers: 200 `{"stored", "duplicates", "problems"}`; 400 when the body cannot be read or every
record in it is bad; 401 token; 413 body too large; 503 with Retry-After when the disk is full.
`/ingest/firehose` speaks the Amazon Data Firehose HTTP endpoint protocol instead: the answer is
`{"requestId", "timestamp"}` (plus `errorMessage` on failure) with the same status codes.
`/ingest/metrics` takes CloudWatch embedded metric format documents into the `metrics` table.
"""

from __future__ import annotations

import logging
import time
import zlib
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ecsguard.core.errors import UserError
from ecsguard.core.files import is_gzip
from ecsguard.logs.multiline import compile_start
from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.records import Problem, ReceiverOptions
from ecsguard.logs.service import LogService
from ecsguard.logs.wal import WalFullError
from ecsguard.web.auth import ApiError, check_token

log = logging.getLogger(__name__)
router = APIRouter()

#: the route word -> the receiver's registry name
ROUTES = {
    "firelens": "firelens",
    "cloudwatch": "cloudwatch",
    "cloudtrail": "cloudtrail",
    "ecs-events": "ecs_events",
    "lines": "lines",
    "metrics": "emf",  # EMF documents (one, a JSON list, or NDJSON): what `ecsguard agent` posts
}
#: problems in an answer; the rest are counted
SHOWN_PROBLEMS = 20
#: problem kinds that are not a fault of the payload (a Firehose destination health check)
_BENIGN = frozenset({"control_message"})
_FIREHOSE_REQUEST_ID = "x-amz-firehose-request-id"


@dataclass(frozen=True)
class IngestResult:
    rows: int
    stored: int
    problems: list[Problem]

    def body(self) -> dict[str, Any]:
        return {
            "stored": self.stored,
            "duplicates": self.rows - self.stored,
            "problems": [str(p) for p in self.problems[:SHOWN_PROBLEMS]],
            "problem_count": len(self.problems),
        }


async def read_body(request: Request, max_body: int) -> bytes:
    """The raw request body; 413 as soon as it is known to exceed `max_body`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body:
        raise ApiError(413, f"the body is {int(declared)} bytes; this server takes {max_body}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_body:
            raise ApiError(413, f"the body exceeds {max_body} bytes (--max-body)")
        chunks.append(chunk)
    return b"".join(chunks)  # one copy (a growing bytearray copied each time it grew, then once)


def decode_body(data: bytes, encoding: str | None, max_body: int) -> bytes:
    """`data` with its Content-Encoding undone; bounded so a gzip bomb is a 413, not an OOM."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        return data
    if encoding not in ("gzip", "x-gzip"):
        raise ApiError(415, f"Content-Encoding {encoding[:40]!r} is not supported; use gzip")
    out = bytearray()
    rest = data
    while rest:  # a gzip stream may hold several members
        inflater = zlib.decompressobj(wbits=31)
        try:
            out += inflater.decompress(rest, max_body + 1 - len(out))
            if len(out) > max_body:
                raise ApiError(413, f"the body decompresses to more than {max_body} bytes")
            if not inflater.eof:
                raise ApiError(400, "invalid gzip body: the data ends before the gzip stream does")
        except zlib.error as exc:
            raise ApiError(400, f"invalid gzip body: {exc}") from None
        rest = inflater.unused_data.lstrip(b"\0")  # some writers pad members with zeros
    return bytes(out)


def ingest(
    service: LogService, receiver: str, data: bytes, options: ReceiverOptions
) -> IngestResult:
    """Parse and store (blocking: run it in the threadpool). Raises ApiError for 400 and 503."""
    parsed = RECEIVERS.get(receiver)(data, options)
    rows = parsed.batch.num_rows
    faults = [p for p in parsed.problems if p.kind not in _BENIGN]
    if rows == 0 and faults:
        shown = "; ".join(str(p) for p in faults[:SHOWN_PROBLEMS])
        raise ApiError(400, f"no record could be read: {shown}")
    try:
        stored = service.accept(parsed, len(data))
    except WalFullError as exc:
        raise ApiError(503, str(exc), {"Retry-After": str(exc.retry_after)}) from None
    return IngestResult(rows, stored, parsed.problems)


async def _receive(request: Request, receiver: str, options: ReceiverOptions) -> IngestResult:
    try:
        return await _receive_counted(request, receiver, options)
    except ApiError as err:  # counted for /metrics: a sender refused over and over shows there
        request.app.state.service.stats.refuse(err.status)
        raise


async def _receive_counted(
    request: Request, receiver: str, options: ReceiverOptions
) -> IngestResult:
    state = request.app.state
    check_token(request, state.settings.token)
    max_body = state.settings.max_body
    encoding = request.headers.get("content-encoding")
    service: LogService = state.service
    # bodies in memory at once are bounded: a burst of large requests waits here instead
    async with state.ingest_slots:
        raw = await read_body(request, max_body)
        if encoding is None and receiver == "lines" and is_gzip(raw):
            # `curl --data-binary @app.log.gz` sends no Content-Encoding; text never starts so
            encoding = "gzip"

        def work() -> IngestResult:
            return ingest(service, receiver, decode_body(raw, encoding, max_body), options)

        return await run_in_threadpool(work)


@router.post("/ingest/firehose")
async def firehose(request: Request) -> Response:
    """Amazon Data Firehose HTTP endpoint delivery (CloudWatch Logs subscription records)."""
    request_id = request.headers.get(_FIREHOSE_REQUEST_ID, "")
    try:
        options = ReceiverOptions(input_name=f"firehose request {request_id[:64]}".strip())
        await _receive(request, "cloudwatch", options)
    except ApiError as err:
        log.warning("firehose request %s refused: %s", request_id[:64], err.message)
        return _firehose_answer(request_id, err.status, err.message, err.headers)
    return _firehose_answer(request_id, 200)


def _firehose_answer(
    request_id: str,
    status: int,
    error: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"requestId": request_id, "timestamp": time.time_ns() // 1_000_000}
    if error is not None:
        body["errorMessage"] = error
    return JSONResponse(body, status_code=status, headers=headers)


@router.post("/ingest/lines")
async def lines(
    request: Request,
    source: str | None = None,
    cluster: str | None = None,
    service: str | None = None,
    container: str | None = None,
    multiline: bool = False,
    multiline_start: str | None = None,
) -> dict[str, Any]:
    """NDJSON or plain-text lines; the query parameters fill the columns the lines lack.
    `multiline=true` joins stack traces in a body; `multiline_start=REGEX` (RE2) marks the first
    line of a record instead."""
    if multiline_start:
        try:
            compile_start(multiline_start)
        except UserError as err:
            raise ApiError(400, err.problem) from None
    options = ReceiverOptions(
        input_name="POST /ingest/lines",
        source=source or None,
        cluster=cluster or None,
        service=service or None,
        container=container or None,
        multiline=multiline,
        multiline_start=multiline_start or None,
    )
    return (await _receive(request, "lines", options)).body()


@router.post("/ingest/{kind}")
async def receive(
    request: Request,
    kind: str,
    cluster: str | None = None,
    service: str | None = None,
    container: str | None = None,
) -> dict[str, Any]:
    """Fluent Bit http output (firelens), CloudWatch subscriptions, CloudTrail files, ECS events.
    Query parameters fill columns the payload lacks: FireLens records name their cluster and
    task but not their service, so a task's Fluent Bit posts to `/ingest/firelens?service=api`."""
    receiver = ROUTES.get(kind)
    if receiver is None:
        known = ", ".join(sorted([*ROUTES, "firehose"]))
        raise ApiError(404, f"no receiver named {kind[:40]!r}; the receivers are {known}")
    options = ReceiverOptions(
        input_name=f"POST /ingest/{kind}",
        cluster=cluster or None,
        service=service or None,
        container=container or None,
    )
    return (await _receive(request, receiver, options)).body()
