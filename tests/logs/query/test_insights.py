"""Insights queries against hand-written DuckDB SQL over the same generated store (golden tests).

The store holds a few thousand ECS-like records: JSON request logs (their keys in `fields`),
key=value text lines, errors with stack traces. Two batches are flushed to Parquet, one stays
in the WAL, so every query reads both. The expected SQL is written by hand from the Insights
docs (JSONPath, date_trunc, ordered aggregates...), never derived from the compiler's output.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pytest

from ecsguard.logs.pipeline import Pipeline
from ecsguard.logs.query.insights import compile_query
from ecsguard.logs.query.timerange import TimeRange
from ecsguard.logs.schema import LOGS

BASE = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
WINDOW = TimeRange(
    datetime(2026, 11, 28, 9, 0, tzinfo=UTC), datetime(2026, 11, 28, 11, 30, tzinfo=UTC)
)
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
W = "time >= TIMESTAMPTZ '2026-11-28 09:00:00+00' AND time < TIMESTAMPTZ '2026-11-28 11:30:00+00'"
IPS = [
    "10.0.3.4",
    "10.250.1.9",
    "10.300.1.1",
    "192.168.1.20",
    "172.16.5.5",
    "not-an-ip",
    "2001:db8::1",
    "::1",
    "gggg::1",
    "fe80::a:b",
]
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/app/worker.py", line 12, in run\n'
    "    db.connect()\n"
    "ConnectionError: connection refused to db:5432"
)


def records(count: int = 3000, seed: int = 20261128) -> list[dict[str, Any]]:
    """ECS-like records over four hours, every time distinct, in a shuffled order."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        time = BASE + timedelta(seconds=i * 4.8, microseconds=rng.randrange(1000))
        service = rng.choice(["api", "web", "worker"])
        row: dict[str, Any] = {
            "time": time,
            "ingest_time": time + timedelta(seconds=rng.randrange(1, 5)),
            "account": "123456789012",
            "region": "ap-northeast-1",
            "cluster": rng.choice(["prod", "staging"]),
            "service": service,
            "task": f"task-{rng.randrange(4)}",
            "task_definition": f"{service}:7",
            "container": rng.choice(["app", "envoy"]),
            "stream": rng.choice(["stdout", "stderr"]),
            "source": rng.choice(["firelens", "forward"]),
            "id": f"r{i:05d}",
            "fields": None,
        }
        kind = rng.random()
        if kind < 0.6:
            status: Any = rng.choice([200, 200, 200, 201, 204, 301, 404, 500, 503])
            if rng.random() < 0.05:
                status = str(status)  # some services log numbers as strings
            elif rng.random() < 0.02:
                status = "n/a"
            method = rng.choice(["GET", "GET", "POST", "PUT", "DELETE"])
            path = f"/users/{rng.randrange(30)}"
            message = f"{method} {path} {status}"
            obj: dict[str, Any] = {
                "message": message,
                "status": status,
                "latency_ms": round(rng.expovariate(1 / 80), 3),
                "method": method,
                "path": path,
                "user": {"id": rng.randrange(6), "name": rng.choice(["alice", "bob", "carol"])},
                "client_ip": rng.choice(IPS),
            }
            if rng.random() < 0.3:
                obj["trace.id"] = f"t-{rng.randrange(10**6):06d}"  # a key with a dot in it
            code = status if isinstance(status, int) else 200
            row["level"] = "ERROR" if code >= 500 else "WARN" if code >= 400 else "INFO"
            row["fields"] = orjson.dumps(obj).decode()
        elif kind < 0.85:
            user = rng.choice(["alice", "bob", "carol", "dave"])
            method = rng.choice(["GET", "POST"])
            message = f"audit user={user} method={method} latency := {rng.randrange(1, 400)}"
            row["level"] = rng.choice(["INFO", None])
        elif kind < 0.95:
            message = rng.choice(
                [TRACEBACK, "Timeout waiting for upstream", "connection REFUSED by peer"]
            )
            row["level"] = "ERROR"
        else:
            message = rng.choice(["   ", "\t", "-"])
            row["level"] = ""
        row["message"] = message
        rows.append(row)
    rng.shuffle(rows)
    return rows


def batch(rows: list[dict[str, Any]]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(rows, schema=LOGS)


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    pipeline = Pipeline(Path(tmp_path_factory.mktemp("insights")))
    rows = records()
    pipeline.ingest("logs", batch(rows[:1200]))
    pipeline.flush()
    pipeline.ingest("logs", batch(rows[1200:2200]))
    pipeline.flush()
    pipeline.ingest("logs", batch(rows[2200:]))  # stays in the WAL
    connection = pipeline.connect()
    yield connection
    connection.close()
    pipeline.close()


def J(key: str) -> str:
    """A JSON key of the record, by JSONPath (the compiler uses JSON pointers)."""
    return f"json_extract_string(fields, '$.{key}')"


def N(key: str) -> str:
    return f"TRY_CAST({J(key)} AS DOUBLE)"


def normal(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.9g}")
    return value


def run(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    result = con.execute(sql)
    columns = [d[0] for d in result.description or []]
    return columns, [tuple(normal(v) for v in row) for row in result.fetchall()]


# (Insights query, hand-written SQL, whether the row order is part of the answer)
CASES: list[tuple[str, str, bool]] = [
    (
        "fields @timestamp, @message | limit 5",
        f'SELECT time AS "@timestamp", message AS "@message" FROM logs WHERE {W} '
        "ORDER BY time DESC LIMIT 5",
        True,
    ),
    (  # no fields: @timestamp and @message, newest first
        'filter level = "ERROR"',
        f'SELECT time AS "@timestamp", message AS "@message" FROM logs '
        f"WHERE {W} AND level = 'ERROR' ORDER BY time DESC",
        True,
    ),
    (  # a number against a JSON value compares numerically, also for "404"-style strings
        "filter status >= 500 | fields @timestamp, status, path",
        f'SELECT time AS "@timestamp", {J("status")} AS status, {J("path")} AS path '
        f"FROM logs WHERE {W} AND {N('status')} >= 500 ORDER BY time DESC",
        True,
    ),
    (
        'filter status = "404" | stats count(*) as n',
        f"SELECT count(*) AS n FROM logs WHERE {W} AND {J('status')} = '404'",
        False,
    ),
    (
        'filter method in ["POST", "PUT"] and not (status in [200, 201]) '
        "| stats count(*) as n by method",
        f"SELECT {J('method')} AS method, count(*) AS n FROM logs WHERE {W} "
        f"AND {J('method')} IN ('POST', 'PUT') AND NOT ({N('status')} IN (200, 201)) "
        "GROUP BY 1 ORDER BY 1",
        True,
    ),
    (
        'filter @message like "Timeout" or @message like /(?i)refused/ | stats count(*) as n',
        f"SELECT count(*) AS n FROM logs WHERE {W} AND (strpos(message, 'Timeout') > 0 "
        "OR lower(message) LIKE '%refused%')",
        False,
    ),
    (
        "filter @message not like /^GET/ and ispresent(path) | stats count(*) as n",
        f"SELECT count(*) AS n FROM logs WHERE {W} AND NOT starts_with(message, 'GET') "
        f"AND {J('path')} IS NOT NULL",
        False,
    ),
    (
        r"filter path =~ /^\/users\/1\d$/ | fields path | sort path asc | limit 20",
        f"SELECT {J('path')} AS path FROM logs WHERE {W} "
        f"AND {J('path')} SIMILAR TO '/users/1[0-9]' ORDER BY path, time DESC LIMIT 20",
        True,
    ),
    (
        "stats count(*) as n, count(status) as with_status, count_distinct(service) as services",
        f"SELECT count(*) AS n, count({J('status')}) AS with_status, "
        f"count(DISTINCT service) AS services FROM logs WHERE {W}",
        False,
    ),
    (
        "stats sum(latency_ms) as total, avg(latency_ms) as mean, min(latency_ms) as low, "
        "max(latency_ms) as high, stddev(latency_ms) as sd by service",
        f"SELECT service, sum({N('latency_ms')}) AS total, avg({N('latency_ms')}) AS mean, "
        f"min({N('latency_ms')}) AS low, max({N('latency_ms')}) AS high, "
        f"stddev_samp({N('latency_ms')}) AS sd FROM logs WHERE {W} GROUP BY 1 ORDER BY 1",
        True,
    ),
    (
        "stats pct(latency_ms, 95) as p95, pct(latency_ms, 50) as p50 by bin(30m)",
        'SELECT to_timestamp(floor(epoch(time) / 1800) * 1800) AS "bin(30m)", '
        f"quantile_disc({N('latency_ms')}, 0.95) AS p95, "
        f"quantile_disc({N('latency_ms')}, 0.5) AS p50 FROM logs WHERE {W} "
        "GROUP BY 1 ORDER BY 1",
        True,
    ),
    (
        "stats earliest(status) as first, latest(status) as last by service",
        f"SELECT service, first({J('status')} ORDER BY time) "
        f"FILTER (WHERE {J('status')} IS NOT NULL) AS first, "
        f"last({J('status')} ORDER BY time) FILTER (WHERE {J('status')} IS NOT NULL) AS last "
        f"FROM logs WHERE {W} GROUP BY 1 ORDER BY 1",
        True,
    ),
    (
        "stats count(*) as n by service, level | sort n desc | limit 3",
        f"SELECT service, level, count(*) AS n FROM logs WHERE {W} GROUP BY 1, 2 "
        "ORDER BY n DESC, service, level NULLS LAST LIMIT 3",
        True,
    ),
    (  # a glob: the last * takes the rest of the line
        'parse @message "user=* method=* latency := *" as user, method, latency '
        "| filter ispresent(user) | stats avg(latency) as avg_latency, count(*) as n by user",
        "SELECT split_part(split_part(message, 'user=', 2), ' ', 1) AS user, "
        "avg(CAST(split_part(message, ':= ', 2) AS INTEGER)) AS avg_latency, count(*) AS n "
        f"FROM logs WHERE {W} AND message LIKE '%user=% method=% latency := %' "
        "GROUP BY 1 ORDER BY 1",
        True,
    ),
    (
        r"parse @message /user=(?<who>\w+) method=(?<verb>[A-Z]+)/ "
        "| stats count(*) as n by who, verb",
        "SELECT CASE WHEN message LIKE '%user=% method=%' "
        "THEN split_part(split_part(message, 'user=', 2), ' ', 1) END AS who, "
        "CASE WHEN message LIKE '%user=% method=%' "
        "THEN split_part(split_part(message, 'method=', 2), ' ', 1) END AS verb, count(*) AS n "
        f"FROM logs WHERE {W} GROUP BY 1, 2 ORDER BY 1 NULLS LAST, 2 NULLS LAST",
        True,
    ),
    (
        "fields strlen(@message) as len, toupper(service) as svc, tolower(level) as lvl, "
        'concat(cluster, "/", service) as cs | sort len desc | limit 10',
        "SELECT length(message) AS len, upper(service) AS svc, lower(level) AS lvl, "
        f"cluster || '/' || service AS cs FROM logs WHERE {W} "
        "ORDER BY len DESC, time DESC LIMIT 10",
        True,
    ),
    (  # the docs' own examples: rtrim -> xyZfoo, trim -> foo, substr from 0 -> foo
        'fields ltrim("  x  ") as l, rtrim("xyZfooxyZ", "xyZ") as r, '
        'trim("xyZfooxyZ", "xyZ") as t, substr("xyZfooxyZ", 3, 3) as s, '
        'substr("xyZfooxyZ", 6) as s2, replace(path, "/", "_") as p, '
        'strcontains(@message, "GET") as has_get | filter ispresent(path) | limit 3',
        "SELECT 'x  ' AS l, 'xyZfoo' AS r, 'foo' AS t, 'foo' AS s, 'xyZ' AS s2, "
        f"'_users_' || split_part({J('path')}, '/', 3) AS p, "
        "CASE WHEN message LIKE '%GET%' THEN 1 ELSE 0 END AS has_get "
        f"FROM logs WHERE {W} AND {J('path')} IS NOT NULL ORDER BY time DESC LIMIT 3",
        True,
    ),
    (
        "filter isempty(level) or isblank(@message) | stats count(*) as n",
        f"SELECT count(*) AS n FROM logs WHERE {W} AND (level IS NULL OR level = '' "
        "OR trim(message, ' ' || chr(9) || chr(10)) = '')",
        False,
    ),
    (
        "filter ispresent(latency_ms) | fields coalesce(trace.id, path) as where, "
        "abs(0 - latency_ms) as a, ceil(latency_ms) as c, floor(latency_ms) as f, "
        "round(latency_ms, 1) as r, sqrt(latency_ms) as q, log(latency_ms + 1) as lg, "
        "pow(2, 3) as p8, 2 ^ 10 as k, 10 % 3 as m, greatest(1, latency_ms) as g | limit 5",
        f'SELECT coalesce(json_extract_string(fields, \'$."trace.id"\'), {J("path")}) AS "where", '
        f"{N('latency_ms')} AS a, ceil({N('latency_ms')}) AS c, floor({N('latency_ms')}) AS f, "
        f"round({N('latency_ms')}, 1) AS r, sqrt({N('latency_ms')}) AS q, "
        f"ln({N('latency_ms')} + 1) AS lg, 8.0 AS p8, 1024.0 AS k, 1 AS m, "
        f"CASE WHEN {N('latency_ms')} > 1 THEN {N('latency_ms')} ELSE 1 END AS g "
        f"FROM logs WHERE {W} AND {J('latency_ms')} IS NOT NULL ORDER BY time DESC LIMIT 5",
        True,
    ),
    (
        "fields datefloor(@timestamp, 1h) as hr, dateceil(@timestamp, 15m) as q, "
        "toMillis(@timestamp) as ms, fromMillis(toMillis(@timestamp)) as back | limit 5",
        "SELECT date_trunc('hour', time) AS hr, "
        "to_timestamp(ceil(epoch(time) / 900) * 900) AS q, "
        "epoch_us(time) // 1000 AS ms, "
        "date_trunc('millisecond', time) AS back "
        f"FROM logs WHERE {W} ORDER BY time DESC LIMIT 5",
        True,
    ),
    (
        'filter isValidIpV4(client_ip) and isIpInSubnet(client_ip, "10.0.0.0/8") '
        "| stats count(*) as n",
        f"SELECT count(*) AS n FROM logs WHERE {W} AND {J('client_ip')} IN "
        "('10.0.3.4', '10.250.1.9')",
        False,
    ),
    (
        "stats count(*) as n by isValidIp(client_ip) as valid, isValidIpV6(client_ip) as v6 "
        "| filter ispresent(n)",
        f"SELECT coalesce({J('client_ip')} IN ('10.0.3.4', '10.250.1.9', '192.168.1.20', "
        "'172.16.5.5', '2001:db8::1', '::1', 'fe80::a:b'), false) AS valid, "
        f"coalesce({J('client_ip')} IN ('2001:db8::1', '::1', 'fe80::a:b'), false) AS v6, "
        "count(*) AS n "
        f"FROM logs WHERE {W} GROUP BY 1, 2 ORDER BY 1, 2",
        True,
    ),
    (  # the newest record of each service
        "fields service, @timestamp | dedup service",
        f'SELECT service, time AS "@timestamp" FROM logs WHERE {W} '
        "QUALIFY row_number() OVER (PARTITION BY service ORDER BY time DESC) = 1 "
        "ORDER BY time DESC",
        True,
    ),
    (  # the oldest of each level; records without a level are all kept
        "fields level | sort @timestamp asc | dedup level | limit 50",
        f"SELECT level FROM logs WHERE {W} QUALIFY level IS NULL OR row_number() "
        "OVER (PARTITION BY level ORDER BY time) = 1 ORDER BY time LIMIT 50",
        True,
    ),
    (  # nested keys by dots, and a key that has a dot in its name
        "filter user.id = 3 and ispresent(trace.id) | fields user.name, `trace.id`",
        f'SELECT {J("user.name")} AS "user.name", '
        'json_extract_string(fields, \'$."trace.id"\') AS "trace.id" '
        f"FROM logs WHERE {W} AND {N('user.id')} = 3 "
        "AND json_extract_string(fields, '$.\"trace.id\"') IS NOT NULL ORDER BY time DESC",
        True,
    ),
    (
        "fields @logStream, @log, @ingestionTime, @ptr, task, task_definition, container, source "
        "| limit 5",
        'SELECT stream AS "@logStream", cluster || \'/\' || service AS "@log", '
        'ingest_time AS "@ingestionTime", id AS "@ptr", task, task_definition, container, '
        f"source FROM logs WHERE {W} ORDER BY time DESC LIMIT 5",
        True,
    ),
    (
        "stats count(*) as n by bin(1h) as hour | filter n > 100 | sort hour asc",
        "SELECT date_trunc('hour', time) AS hour, count(*) AS n FROM logs "
        f"WHERE {W} GROUP BY 1 HAVING count(*) > 100 ORDER BY 1",
        True,
    ),
    (  # a stats over a stats
        "stats count(*) as n by service, bin(10m) "
        "| stats max(n) as peak, avg(n) as mean by service",
        "SELECT service, max(n) AS peak, avg(n) AS mean FROM (SELECT service, "
        "to_timestamp(floor(epoch(time) / 600) * 600) AS b, count(*) AS n "
        f"FROM logs WHERE {W} GROUP BY 1, 2) GROUP BY 1 ORDER BY 1",
        True,
    ),
    (
        "filter status > 299 | stats count(*) as errors by path | sort errors desc, path asc "
        "| limit 5",
        f"SELECT {J('path')} AS path, count(*) AS errors FROM logs WHERE {W} "
        f"AND {N('status')} > 299 GROUP BY 1 ORDER BY errors DESC, path LIMIT 5",
        True,
    ),
    (  # comments, a backticked name, arithmetic; sort without asc/desc is descending
        '# slow errors\nfilter level = "ERROR" # only errors\n'
        "| fields `latency_ms` * 2 - 1 as doubled | filter ispresent(doubled) "
        "| sort doubled | limit 5",
        f"SELECT {N('latency_ms')} * 2 - 1 AS doubled FROM logs WHERE {W} "
        f"AND level = 'ERROR' AND {J('latency_ms')} IS NOT NULL "
        "ORDER BY doubled DESC, time DESC LIMIT 5",
        True,
    ),
    (  # times compare with ISO strings and with epoch milliseconds
        'filter @timestamp > "2026-11-28T10:00:00Z" and @timestamp <= fromMillis(1795861200000) '
        "| stats count(*) as n",
        f"SELECT count(*) AS n FROM logs WHERE {W} "
        "AND time > TIMESTAMPTZ '2026-11-28 10:00:00+00' "
        "AND time <= TIMESTAMPTZ '2026-11-28 10:20:00+00'",
        False,
    ),
    (  # Insights sorts values that are not numbers before numbers
        "filter ispresent(status) | stats count(*) as n by status | sort status asc",
        f"SELECT {J('status')} AS status, count(*) AS n FROM logs WHERE {W} "
        f"AND {J('status')} IS NOT NULL GROUP BY 1 "
        "ORDER BY TRY_CAST(status AS DOUBLE) NULLS FIRST, status",
        True,
    ),
    (
        "fields now() as n, @timestamp | limit 1",
        f'SELECT {int(NOW.timestamp())} AS n, time AS "@timestamp" FROM logs WHERE {W} '
        "ORDER BY time DESC LIMIT 1",
        True,
    ),
    (  # parse without a source reads @message; =~ also takes a string
        'parse "* waiting for *" as what, whom | filter whom =~ "stream" '
        "| stats count(*) as n by what",
        "SELECT 'Timeout' AS what, count(*) AS n FROM logs "
        f"WHERE {W} AND message = 'Timeout waiting for upstream' GROUP BY 1",
        False,
    ),
    (  # stack traces are one record; like searches all of its lines
        'filter @message like "ConnectionError" and @message like /^Traceback/ '
        "| stats count(*) as n by service | sort service asc",
        f"SELECT service, count(*) AS n FROM logs WHERE {W} AND message = "
        + "'"
        + TRACEBACK.replace("'", "''")
        + "' GROUP BY 1 ORDER BY 1",
        True,
    ),
]


@pytest.mark.parametrize(("query", "expected", "ordered"), CASES, ids=[c[0][:40] for c in CASES])
def test_query_matches_hand_written_sql(
    con: duckdb.DuckDBPyConnection, query: str, expected: str, ordered: bool
) -> None:
    compiled = compile_query(query, WINDOW, now=NOW)
    want_columns, want = run(con, expected)
    got_columns, got = run(con, compiled.sql)
    assert list(compiled.columns) == want_columns == got_columns
    assert want, "the expected answer should not be empty: the case would prove little"
    if not ordered:
        want, got = sorted(want, key=repr), sorted(got, key=repr)
    assert got == want


def test_window_excludes_records_outside_it(con: duckdb.DuckDBPyConnection) -> None:
    everything = con.execute("SELECT count(*) FROM logs").fetchone()
    inside = con.execute(compile_query("stats count(*)", WINDOW).sql).fetchone()
    assert everything is not None and inside is not None
    assert 0 < inside[0] < everything[0]


def test_default_limit_is_ten_thousand(con: duckdb.DuckDBPyConnection) -> None:
    wide = TimeRange(BASE, BASE + timedelta(days=1))
    sql = compile_query("fields @message", wide).sql
    assert sql.endswith("LIMIT 10000")
    assert len(con.execute(sql).fetchall()) == 3000


def test_table_argument_names_the_view(con: duckdb.DuckDBPyConnection) -> None:
    con.execute('CREATE OR REPLACE TEMP VIEW "my ""logs""" AS SELECT * FROM logs LIMIT 10')
    sql = compile_query("stats count(*) as n", WINDOW, table='my "logs"').sql
    assert con.execute(sql).fetchall()[0][0] <= 10


def test_keys_of_a_json_log_line_are_fields_through_the_firelens_receiver(tmp_path: Path) -> None:
    from ecsguard.logs.receivers import RECEIVERS
    from ecsguard.logs.records import ReceiverOptions

    lines = [
        {"log": '{"status": 503, "msg": "upstream down", "latency": 12.5, "req": {"id": "r-1"}}'},
        {"log": '{"status": 200, "msg": "ok", "latency": 3}'},
        {"log": "plain text, no fields"},
    ]
    body = "\n".join(
        orjson.dumps(
            {
                **line,
                "date": (BASE + timedelta(hours=1, minutes=i)).timestamp(),
                "ecs_cluster": "prod",
                "ecs_task_arn": "arn:aws:ecs:ap-northeast-1:123456789012:task/prod/abc",
                "container_name": "/app",
                "source": "stdout",
            }
        ).decode()
        for i, line in enumerate(lines)
    ).encode()
    parsed = RECEIVERS.get("firelens")(body, ReceiverOptions(service="api"))
    pipeline = Pipeline(tmp_path)
    pipeline.ingest(parsed.table, parsed.batch)
    con = pipeline.connect()
    query = "filter status >= 500 | fields msg, latency * 2 as double, req.id, @log, container"
    rows = con.execute(compile_query(query, WINDOW).sql).fetchall()
    assert rows == [("upstream down", 25.0, "r-1", "prod/api", "app")]
    pipeline.close()


@pytest.mark.parametrize("key", ["2", "2.5", "'x'"])
def test_sorting_by_a_constant_keeps_the_default_order(
    con: duckdb.DuckDBPyConnection, key: str
) -> None:
    """A constant orders nothing; DuckDB would read `ORDER BY 2` as the second column."""
    wide = TimeRange(BASE, BASE + timedelta(days=1))
    plain = con.execute(compile_query("fields @message | limit 50", wide).sql).fetchall()
    query = f"fields @message | sort {key} asc | limit 50"
    assert con.execute(compile_query(query, wide).sql).fetchall() == plain
