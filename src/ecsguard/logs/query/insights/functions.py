"""SQL pieces: quoting, value types and coercions, periods, and the Insights function table.

Every identifier goes through `ident` and every literal through `literal`: the query text is
untrusted, and these two are the only ways its strings reach the SQL.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ecsguard.logs.query.insights import ast

if TYPE_CHECKING:
    from ecsguard.logs.query.insights.compiler import Expressions

# value types: text, number, timestamp, boolean, and "dynamic" (JSON or parsed text that may
# hold a number: compared as a number against a number, as text against text)
STR, NUM, TIME, BOOL, DYN = "str", "num", "time", "bool", "dyn"
EPOCH = "TIMESTAMPTZ '1970-01-01 00:00:00+00'"


@dataclass(frozen=True, slots=True)
class Col:
    sql: str
    type: str


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def as_text(col: Col) -> str:
    return col.sql if col.type in (STR, DYN) else f"CAST({col.sql} AS VARCHAR)"


def as_num(col: Col) -> str:
    if col.type == NUM:
        return col.sql
    if col.type == BOOL:
        return f"CAST({col.sql} AS INTEGER)"
    if col.type == TIME:
        return to_millis(col.sql)  # Insights timestamps are epoch milliseconds
    return f"TRY_CAST({col.sql} AS DOUBLE)"


def as_time(col: Col) -> str:
    if col.type == TIME:
        return col.sql
    if col.type == NUM:
        return from_millis(col.sql)
    return f"TRY_CAST({as_text(col)} AS TIMESTAMPTZ)"


def to_millis(time_sql: str) -> str:
    return f"(epoch_us({time_sql}) // 1000)"  # truncated: epoch_ms() rounds to the nearest


def from_millis(number_sql: str) -> str:
    # whole microseconds (to_timestamp(ms / 1000.0) would round through a double), and null
    # rather than an overflow error beyond the year 5000
    millis = f"CAST({number_sql} AS DOUBLE)"
    micros = f"TRY_CAST(round({millis} * 1000) AS BIGINT)"
    return f"(CASE WHEN abs({millis}) < 1e14 THEN {EPOCH} + to_microseconds({micros}) END)"


def as_double(col: Col) -> str:
    """A number as DOUBLE: Insights arithmetic never overflows an integer type."""
    return f"CAST({as_num(col)} AS DOUBLE)"


def as_offset(col: Col) -> str:
    """A string offset or length: whole, from 0 to 2^31 - 1 (DuckDB refuses larger ones)."""
    whole = f"TRY_CAST({as_num(col)} AS BIGINT)"
    return f"(CASE WHEN {whole} IS NOT NULL THEN least(greatest({whole}, 0), 2147483647) END)"


# ----------------------------------------------------------------------------------- periods

_FIXED_US = {"ms": 1_000, "s": 10**6, "m": 60 * 10**6, "h": 3600 * 10**6}
_FIXED_US |= {"d": 86_400 * 10**6, "w": 7 * 86_400 * 10**6}
_MONTHS = {"mo": 1, "q": 3, "y": 12}


def interval(period: ast.Duration) -> str | None:
    """The INTERVAL of a period, or None when it is not a usable bin width."""
    if period.unit in _MONTHS:
        if not isinstance(period.amount, int) or period.amount < 1:
            return None
        return f"INTERVAL '{period.amount * _MONTHS[period.unit]} months'"
    micros = round(period.amount * _FIXED_US[period.unit])
    return f"INTERVAL '{micros} microseconds'" if micros >= 1_000 else None


def floor_to(time_sql: str, width: str) -> str:
    # buckets start at the epoch, so bin(5m) edges fall on :00, :05, ... in UTC
    return f"time_bucket({width}, {time_sql}, {EPOCH})"


# --------------------------------------------------------------------------------------- IPs

_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_V4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_H = "[0-9A-Fa-f]{1,4}"


def _ipv6_forms() -> list[str]:
    forms = [rf"(?:{_H}:){{7}}{_H}", rf"(?:{_H}:){{6}}{_V4}"]
    for left in range(8):  # `::` after `left` groups, at most 7 groups in all
        head = ":".join([_H] * left)
        tail = f"(?:{_H}(?::{_H}){{0,{6 - left}}})?" if left < 7 else ""
        forms.append(f"{head}::{tail}")
    for left in range(6):  # the same with a dotted IPv4 address as the last 32 bits
        head = ":".join([_H] * left)
        forms.append(f"{head}::(?:{_H}:){{0,{5 - left}}}{_V4}")
    return forms


IPV4_RE = f"^{_V4}$"
IPV6_RE = "^(?:" + "|".join(_ipv6_forms()) + ")$"


def _ipv4_number(text_sql: str) -> str:
    parts = [f"TRY_CAST(split_part({text_sql}, '.', {i}) AS BIGINT)" for i in range(1, 5)]
    return f"({parts[0]} * 16777216 + {parts[1]} * 65536 + {parts[2]} * 256 + {parts[3]})"


# ------------------------------------------------------------------------------ row functions

Builder = Callable[["Expressions", ast.Call], Col]


def _num1(sql_fn: str) -> Builder:
    return lambda c, call: Col(f"{sql_fn}({as_double(c.arg(call, 0))})", NUM)


def _text1(sql_fn: str, result: str = STR) -> Builder:
    return lambda c, call: Col(f"{sql_fn}({as_text(c.arg(call, 0))})", result)


def _trim(sql_fn: str) -> Builder:
    def build(c: Expressions, call: ast.Call) -> Col:
        args = [as_text(c.arg(call, i)) for i in range(len(call.args))]
        return Col(f"{sql_fn}({', '.join(args)})", STR)

    return build


def _variadic_num(sql_fn: str) -> Builder:
    def build(c: Expressions, call: ast.Call) -> Col:
        args = [as_double(c.arg(call, i)) for i in range(len(call.args))]
        return Col(f"{sql_fn}({', '.join(args)})", NUM)

    return build


def _round(c: Expressions, call: ast.Call) -> Col:
    args = [as_double(c.arg(call, 0))]
    if len(call.args) == 2:
        args.append(f"TRY_CAST({as_num(c.arg(call, 1))} AS INTEGER)")
    return Col(f"round({', '.join(args)})", NUM)


def _concat(c: Expressions, call: ast.Call) -> Col:
    args = [as_text(c.arg(call, i)) for i in range(len(call.args))]
    return Col(f"concat({', '.join(args)})", STR)


def _substr(c: Expressions, call: ast.Call) -> Col:
    # Insights counts from 0, SQL from 1
    text = as_text(c.arg(call, 0))
    start = f"{as_offset(c.arg(call, 1))} + 1"
    if len(call.args) == 3:
        length = as_offset(c.arg(call, 2))
        return Col(f"substring({text}, {start}, {length})", STR)
    return Col(f"substring({text}, {start})", STR)


def _replace(c: Expressions, call: ast.Call) -> Col:
    args = [as_text(c.arg(call, i)) for i in range(3)]
    return Col(f"replace({', '.join(args)})", STR)


def _strcontains(c: Expressions, call: ast.Call) -> Col:
    haystack, needle = as_text(c.arg(call, 0)), as_text(c.arg(call, 1))
    return Col(f"CAST(contains({haystack}, {needle}) AS INTEGER)", NUM)


def _ispresent(c: Expressions, call: ast.Call) -> Col:
    return Col(f"({c.arg(call, 0).sql} IS NOT NULL)", BOOL)


def _isempty(c: Expressions, call: ast.Call) -> Col:
    return Col(f"(coalesce({as_text(c.arg(call, 0))}, '') = '')", BOOL)


def _isblank(c: Expressions, call: ast.Call) -> Col:
    return Col(f"regexp_matches(coalesce({as_text(c.arg(call, 0))}, ''), '^\\s*$')", BOOL)


def _coalesce(c: Expressions, call: ast.Call) -> Col:
    cols = [c.arg(call, i) for i in range(len(call.args))]
    types = {col.type for col in cols}
    if len(types) == 1:
        return Col(f"coalesce({', '.join(col.sql for col in cols)})", types.pop())
    return Col(f"coalesce({', '.join(as_text(col) for col in cols)})", STR)


def _datefloor(c: Expressions, call: ast.Call) -> Col:
    return Col(floor_to(as_time(c.arg(call, 0)), c.period(call, 1)), TIME)


def _dateceil(c: Expressions, call: ast.Call) -> Col:
    time_sql, width = as_time(c.arg(call, 0)), c.period(call, 1)
    floor = floor_to(time_sql, width)
    return Col(f"(CASE WHEN {floor} = {time_sql} THEN {floor} ELSE {floor} + {width} END)", TIME)


def _bin(c: Expressions, call: ast.Call) -> Col:
    return Col(floor_to(as_time(c.timestamp(call)), c.period(call, 0)), TIME)


def _from_millis(c: Expressions, call: ast.Call) -> Col:
    return Col(from_millis(as_num(c.arg(call, 0))), TIME)


def _to_millis(c: Expressions, call: ast.Call) -> Col:
    return Col(to_millis(as_time(c.arg(call, 0))), NUM)


def _now(c: Expressions, call: ast.Call) -> Col:
    return Col(str(c.now_epoch), NUM)  # epoch seconds when the query was compiled


def _is_ip(pattern: str) -> Builder:
    return lambda c, call: Col(
        f"coalesce(regexp_matches({as_text(c.arg(call, 0))}, {literal(pattern)}), false)", BOOL
    )


def _is_valid_ip(c: Expressions, call: ast.Call) -> Col:
    text = as_text(c.arg(call, 0))
    v4, v6 = literal(IPV4_RE), literal(IPV6_RE)
    either = f"regexp_matches({text}, {v4}) OR regexp_matches({text}, {v6})"
    return Col(f"coalesce({either}, false)", BOOL)


def _in_subnet(version: int | None) -> Builder:
    def build(c: Expressions, call: ast.Call) -> Col:
        text = as_text(c.arg(call, 0))
        subnet = c.string_literal(call, 1, 'a subnet such as "10.0.0.0/8"')
        try:
            network = ipaddress.ip_network(subnet, strict=False)
        except ValueError:
            hint = 'e.g. "10.0.0.0/8"'
            raise c.error(call.args[1], f"{subnet!r} is not a subnet", hint) from None
        if network.version == 6 or version == 6:
            raise c.error(call.args[1], "IPv6 subnets are not supported yet", "use an IPv4 subnet")
        low, high = int(network.network_address), int(network.broadcast_address)
        matches = f"regexp_matches({text}, {literal(IPV4_RE)})"
        return Col(
            f"coalesce({matches} AND {_ipv4_number(text)} BETWEEN {low} AND {high}, false)", BOOL
        )

    return build


#: name (lower case) -> (fewest arguments, most arguments or None for any, builder)
ROW_FUNCTIONS: dict[str, tuple[int, int | None, Builder]] = {
    "abs": (1, 1, _num1("abs")),
    "ceil": (1, 1, _num1("ceil")),
    "floor": (1, 1, _num1("floor")),
    "round": (1, 2, _round),
    "log": (1, 1, _num1("ln")),
    "sqrt": (1, 1, _num1("sqrt")),
    "pow": (2, 2, _variadic_num("pow")),
    "greatest": (1, None, _variadic_num("greatest")),
    "least": (1, None, _variadic_num("least")),
    "strlen": (1, 1, _text1("length", NUM)),
    "toupper": (1, 1, _text1("upper")),
    "tolower": (1, 1, _text1("lower")),
    "trim": (1, 2, _trim("trim")),
    "ltrim": (1, 2, _trim("ltrim")),
    "rtrim": (1, 2, _trim("rtrim")),
    "concat": (1, None, _concat),
    "substr": (2, 3, _substr),
    "replace": (3, 3, _replace),
    "strcontains": (2, 2, _strcontains),
    "ispresent": (1, 1, _ispresent),
    "isempty": (1, 1, _isempty),
    "isblank": (1, 1, _isblank),
    "coalesce": (1, None, _coalesce),
    "datefloor": (2, 2, _datefloor),
    "dateceil": (2, 2, _dateceil),
    "bin": (1, 1, _bin),
    "frommillis": (1, 1, _from_millis),
    "tomillis": (1, 1, _to_millis),
    "now": (0, 0, _now),
    "isvalidip": (1, 1, _is_valid_ip),
    "isvalidipv4": (1, 1, _is_ip(IPV4_RE)),
    "isvalidipv6": (1, 1, _is_ip(IPV6_RE)),
    "isipinsubnet": (2, 2, _in_subnet(None)),
    "isipv4insubnet": (2, 2, _in_subnet(4)),
    "isipv6insubnet": (2, 2, _in_subnet(6)),
}


# ------------------------------------------------------------------------------- aggregates


def _count(c: Expressions, call: ast.Call) -> Col:
    if not call.args or isinstance(call.args[0], ast.Star):
        return Col("count(*)", NUM)
    return Col(f"count({c.arg(call, 0).sql})", NUM)


def _count_distinct(c: Expressions, call: ast.Call) -> Col:
    return Col(f"count(DISTINCT {c.arg(call, 0).sql})", NUM)


def _numeric_aggregate(sql_fn: str) -> Builder:
    return lambda c, call: Col(f"{sql_fn}({as_num(c.arg(call, 0))})", NUM)


def _extreme(sql_fn: str) -> Builder:
    def build(c: Expressions, call: ast.Call) -> Col:
        col = c.arg(call, 0)
        if col.type in (DYN, BOOL):  # JSON and parsed values: the numeric extreme
            return Col(f"{sql_fn}({as_num(col)})", NUM)
        return Col(f"{sql_fn}({col.sql})", col.type)

    return build


def _pct(c: Expressions, call: ast.Call) -> Col:
    value = call.args[1]
    if (
        not isinstance(value, ast.Literal)
        or isinstance(value.value, str)
        or not 0 <= value.value <= 100
    ):
        raise c.error(value, "pct() takes a percentile from 0 to 100", "e.g. pct(latency, 95)")
    return Col(f"quantile_disc({as_num(c.arg(call, 0))}, {value.value / 100!r})", NUM)


def _by_time(sql_fn: str) -> Builder:
    def build(c: Expressions, call: ast.Call) -> Col:
        col = c.arg(call, 0)
        time_sql = as_time(c.timestamp(call))
        present = f"FILTER (WHERE {col.sql} IS NOT NULL)"  # the first/last value it had
        return Col(f"{sql_fn}({col.sql}, {time_sql}) {present}", col.type)

    return build


AGGREGATES: dict[str, tuple[int, int | None, Builder]] = {
    "count": (0, 1, _count),
    "count_distinct": (1, 1, _count_distinct),
    "sum": (1, 1, _numeric_aggregate("sum")),
    "avg": (1, 1, _numeric_aggregate("avg")),
    "stddev": (1, 1, _numeric_aggregate("stddev_samp")),
    "min": (1, 1, _extreme("min")),
    "max": (1, 1, _extreme("max")),
    "pct": (2, 2, _pct),
    "earliest": (1, 1, _by_time("arg_min")),
    "latest": (1, 1, _by_time("arg_max")),
}
