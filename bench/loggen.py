"""Deterministic ECS-like FireLens traffic for the log benches: Fluent Bit `http` output,
`format json_lines`, as raw NDJSON plus a `gzip -6` copy, and a manifest with expected answers.

    .venv/bin/python bench/loggen.py [--lines 10000000 | --quick] [--seed 42] [--out DIR]

Records (one JSON object a line, the keys FireLens adds around a container's line):

    {"date":1793491200.123,"source":"stdout","log":"...","container_id":"<64 hex>",
     "container_name":"/ecs-orders-12-app-<hex>","ecs_cluster":"prod",
     "ecs_task_arn":"arn:aws:ecs:ap-northeast-1:123456789012:task/prod/<32 hex>",
     "ecs_task_definition":"orders:12"}

Three clusters (an EC2 one naming its cluster, two Fargate ones giving the cluster ARN), eleven
services, 2-4 tasks each. `log` is one of: a JSON app line (time, level, msg, request_id, status,
latency_ms, path, method, user; Python services put a traceback in `exc_info` on errors), a Java
text line (`2026-11-01 00:00:00.123 ERROR [thread] logger - text req=<id>`, errors followed by a
Java stack trace, joined as Fluent Bit's multiline filter does) or an nginx access line. Every
record carries a request id no other record has, so any one is a needle. The event time inside
`log` equals `date` to the millisecond, so errors per minute agree whichever time a tool reads.

An error is exactly: a JSON line with `"level":"error"` or a Java line with ` ERROR [`; access
lines carry no level. The manifest counts them per level and names three needles.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

DEFAULT_LINES = 10_000_000
QUICK_LINES = 200_000
VERSION = 1  # bump when the output changes, so cached data is rebuilt
ACCOUNT = "123456789012"
REGION = "ap-northeast-1"
START_MS = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1000)
EVENTS_PER_SECOND = 200  # 10 M lines span about 14 hours: 15 hourly partitions
CHUNK = 50_000  # records per write
_MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class Service:
    cluster: str
    family: str
    revision: int
    kind: str  # json-node | json-python | java | nginx
    weight: int  # share of the traffic
    fargate: bool


SERVICES = [
    Service("prod", "web", 41, "nginx", 8, False),
    Service("prod", "frontend", 41, "json-node", 10, False),
    Service("prod", "api", 118, "json-python", 14, False),
    Service("prod", "orders", 12, "java", 10, False),
    Service("prod", "payments", 7, "java", 6, False),
    Service("prod", "search", 33, "json-python", 8, False),
    Service("prod", "auth", 9, "json-node", 6, False),
    Service("staging", "api", 121, "json-python", 3, True),
    Service("staging", "orders", 13, "java", 2, True),
    Service("batch", "etl", 5, "json-python", 4, True),
    Service("batch", "reports", 3, "java", 2, True),
]

PATHS = [
    "/",
    "/api/cart",
    "/api/orders",
    "/api/orders/{n}",
    "/api/pay",
    "/api/products/{n}",
    "/login",
    "/search?q=item{n}",
    "/health",
    "/api/users/{n}/profile",
]
METHODS = ["GET", "GET", "GET", "GET", "POST", "POST", "PUT", "DELETE"]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "ELB-HealthChecker/2.0",
    "okhttp/4.12.0",
    "python-requests/2.32.3",
]
INFO_MESSAGES = [
    "request handled",
    "order created",
    "cart updated",
    "user signed in",
    "cache hit for product {n}",
    "payment authorised",
    "search returned {n} results",
    "session refreshed",
    "batch {n} committed",
]
WARN_MESSAGES = [
    "slow query took {n} ms",
    "retrying upstream call (attempt 2 of 3)",
    "rate limit close for client {n}",
    "deprecated endpoint called",
]
ERROR_MESSAGES = [
    "request failed",
    "payment gateway timeout",
    "inventory service unavailable",
    "could not write order {n}",
    "database connection refused",
]
DEBUG_MESSAGES = ["query plan chosen: index scan", "cache miss for key user:{n}", "headers parsed"]
JAVA_LOGGERS = [
    "c.e.orders.OrderController",
    "c.e.orders.OrderRepository",
    "c.e.payments.PaymentClient",
    "c.e.common.http.RetryFilter",
    "o.s.web.servlet.DispatcherServlet",
]
JAVA_EXCEPTIONS = [
    ("java.lang.IllegalStateException", "gateway answered 503"),
    ("java.net.SocketTimeoutException", "Read timed out"),
    ("org.springframework.dao.DataAccessResourceFailureException", "Unable to acquire JDBC"),
    ("java.lang.NullPointerException", 'Cannot invoke "Order.getId()" because "order" is null'),
]
JAVA_FRAMES = [
    "com.example.orders.OrderService.create(OrderService.java:{n})",
    "com.example.payments.PaymentClient.charge(PaymentClient.java:{n})",
    "com.example.common.http.RetryFilter.doFilter(RetryFilter.java:{n})",
    "org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:897)",
    "org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:166)",
    "java.base/java.lang.Thread.run(Thread.java:1583)",
]
PY_TRACEBACKS = [
    (
        "Traceback (most recent call last):\n"
        '  File "/app/api/handlers.py", line {n}, in create_order\n'
        "    reserve(items)\n"
        '  File "/app/api/inventory.py", line 57, in reserve\n'
        '    raise TimeoutError(f"inventory did not answer within {{timeout}} ms")\n'
        "TimeoutError: inventory did not answer within 2000 ms"
    ),
    (
        "Traceback (most recent call last):\n"
        '  File "/usr/local/lib/python3.12/site-packages/psycopg/connection.py", line 728, '
        "in connect\n"
        "    raise last_ex.with_traceback(None)\n"
        "psycopg.OperationalError: connection failed: connection to server at "
        '"10.0.{n}.5", port 5432 failed: Connection refused'
    ),
    (
        "Traceback (most recent call last):\n"
        '  File "/app/etl/load.py", line {n}, in run\n'
        "    rows = transform(batch)\n"
        '  File "/app/etl/load.py", line 88, in transform\n'
        '    return [row["amount"] * rate for row in batch]\n'
        "KeyError: 'amount'"
    ),
]


def request_id(index: int, seed: int) -> str:
    """Unique per record: multiplying by an odd constant modulo 2**64 is a bijection."""
    return f"{((index + seed * 1_000_003) * 0x9E3779B97F4A7C15) & _MASK64:016x}"


def _iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class Generator:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        rng = self.rng
        # (service, per-task constant JSON tail) per task; picked by service weight
        self.tasks: list[list[tuple[Service, bytes, str]]] = []
        self.weights: list[int] = []
        for svc in SERVICES:
            tasks = []
            for _ in range(4 if svc.cluster == "prod" else 2):
                task_id = f"{rng.getrandbits(128):032x}"
                arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{svc.cluster}/{task_id}"
                cluster = (
                    f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{svc.cluster}"
                    if svc.fargate
                    else svc.cluster
                )
                container = "nginx" if svc.kind == "nginx" else "app"
                name = (
                    container
                    if svc.fargate
                    else f"/ecs-{svc.family}-{svc.revision}-{container}-{rng.getrandbits(80):020x}"
                )
                tail = orjson.dumps(
                    {
                        "container_id": f"{rng.getrandbits(256):064x}",
                        "container_name": name,
                        "ecs_cluster": cluster,
                        "ecs_task_arn": arn,
                        "ecs_task_definition": f"{svc.family}:{svc.revision}",
                    }
                )
                tasks.append((svc, tail[1:], f"10.0.{rng.randrange(256)}.{rng.randrange(256)}"))
            self.tasks.append(tasks)
            self.weights.append(svc.weight)
        self.levels = {"debug": 0, "info": 0, "warn": 0, "error": 0, "none": 0}

    def _level(self) -> str:
        roll = self.rng.random()
        return (
            "error"
            if roll < 0.02
            else "warn"
            if roll < 0.07
            else "debug"
            if roll < 0.17
            else "info"
        )

    def chunk(self, first: int, count: int) -> bytes:
        rng = self.rng
        picks = rng.choices(self.tasks, self.weights, k=count)
        out = []
        for offset, tasks in enumerate(picks):
            index = first + offset
            svc, tail, ip = tasks[rng.randrange(len(tasks))]
            ms = START_MS + index * 1000 // EVENTS_PER_SECOND + rng.randrange(5)
            rid = request_id(index, self.seed)
            if svc.kind == "nginx":
                log, stream = self._access(ms, rid, ip), "stdout"
                self.levels["none"] += 1
            else:
                level = self._level()
                self.levels[level] += 1
                stream = "stderr" if level == "error" else "stdout"
                if svc.kind == "java":
                    log = self._java(ms, level, rid)
                else:
                    log = self._json(ms, level, rid, svc.kind == "json-python")
            head = orjson.dumps({"date": ms / 1000, "source": stream, "log": log})
            out.append(head[:-1] + b"," + tail)
        return b"\n".join(out) + b"\n"

    def _n(self) -> int:
        return self.rng.randrange(1, 100_000)

    def _access(self, ms: int, rid: str, ip: str) -> str:
        rng = self.rng
        moment = datetime.fromtimestamp(ms / 1000, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
        path = rng.choice(PATHS).format(n=self._n())
        status = rng.choices((200, 201, 304, 404, 500), (80, 6, 6, 6, 2))[0]
        return (
            f'{ip} - - [{moment}] "{rng.choice(METHODS)} {path} HTTP/1.1" {status} '
            f'{rng.randrange(120, 60_000)} "-" "{rng.choice(AGENTS)}" '
            f"rt={rng.randrange(1, 2500) / 1000:.3f} req_id={rid}"
        )

    def _json(self, ms: int, level: str, rid: str, python: bool) -> str:
        rng = self.rng
        messages = {
            "error": ERROR_MESSAGES,
            "warn": WARN_MESSAGES,
            "debug": DEBUG_MESSAGES,
            "info": INFO_MESSAGES,
        }[level]
        event = {
            "time": _iso(ms),
            "level": level,
            "msg": rng.choice(messages).format(n=self._n()),
            "request_id": rid,
            "method": rng.choice(METHODS),
            "path": rng.choice(PATHS).format(n=self._n()),
            "status": 500 if level == "error" else 429 if level == "warn" else 200,
            "latency_ms": round(rng.lognormvariate(3.0, 0.8), 1),
            "user": f"u{rng.randrange(50_000)}",
        }
        if level == "error" and python:
            event["exc_info"] = rng.choice(PY_TRACEBACKS).format(n=rng.randrange(20, 400))
        return orjson.dumps(event).decode()

    def _java(self, ms: int, level: str, rid: str) -> str:
        rng = self.rng
        moment = _iso(ms).replace("T", " ").removesuffix("Z")
        messages = {
            "error": ERROR_MESSAGES,
            "warn": WARN_MESSAGES,
            "debug": DEBUG_MESSAGES,
            "info": INFO_MESSAGES,
        }[level]
        line = (
            f"{moment} {level.upper():<5} [http-nio-8080-exec-{rng.randrange(1, 50)}] "
            f"{rng.choice(JAVA_LOGGERS)} - {rng.choice(messages).format(n=self._n())} "
            f"req={rid}"
        )
        if level != "error":
            return line
        name, text = rng.choice(JAVA_EXCEPTIONS)
        frames = "".join(
            "\n\tat " + frame.format(n=rng.randrange(20, 600))
            for frame in rng.sample(JAVA_FRAMES, rng.randrange(3, 6))
        )
        return (
            f"{line}\n{name}: {text}{frames}\n\t... {rng.randrange(20, 90)} common frames omitted"
        )


def generate(out: Path, lines: int, seed: int) -> dict:
    """Write out/raw.ndjson, out/raw.ndjson.gz (gzip -6, compressing on the other core while
    this one generates) and out/manifest.json; the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    raw_path, gz_path = out / "raw.ndjson", out / "raw.ndjson.gz"
    gen = Generator(seed)
    started = time.perf_counter()
    with raw_path.open("wb") as raw, gz_path.open("wb") as gz:
        gzip = subprocess.Popen(["gzip", "-6", "-c"], stdin=subprocess.PIPE, stdout=gz)
        assert gzip.stdin is not None
        for first in range(0, lines, CHUNK):
            data = gen.chunk(first, min(CHUNK, lines - first))
            raw.write(data)
            gzip.stdin.write(data)
        gzip.stdin.close()
        if gzip.wait() != 0:
            raise SystemExit("gzip failed")
    seconds = time.perf_counter() - started
    needles = {
        f"{fraction}": request_id(int(lines * fraction), seed) for fraction in (0.37, 0.61, 0.93)
    }
    manifest = {
        "version": VERSION,
        "lines": lines,
        "seed": seed,
        "raw_bytes": raw_path.stat().st_size,
        "gzip_bytes": gz_path.stat().st_size,
        "levels": gen.levels,
        "errors": gen.levels["error"],
        "needles": needles,
        "start": _iso(START_MS),
        "end": _iso(START_MS + lines * 1000 // EVENTS_PER_SECOND),
        "generate_seconds": round(seconds, 1),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def ensure(out: Path, lines: int, seed: int) -> dict:
    """The manifest of data already in `out` for these settings, or freshly generated data."""
    path = out / "manifest.json"
    if path.exists():
        manifest = json.loads(path.read_text())
        if (manifest.get("version"), manifest.get("lines"), manifest.get("seed")) == (
            VERSION,
            lines,
            seed,
        ) and (out / "raw.ndjson.gz").exists():
            return manifest
    print(f"generating {lines:,} FireLens records into {out} ...", flush=True)
    return generate(out, lines, seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=DEFAULT_LINES)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_LINES:,} lines")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, help="default /tmp/ecsguard-bench-logs/<lines>-<seed>")
    args = parser.parse_args()
    lines = QUICK_LINES if args.quick else args.lines
    out = args.out or Path(f"/tmp/ecsguard-bench-logs/{lines}-{args.seed}")
    manifest = generate(out, lines, args.seed)
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
