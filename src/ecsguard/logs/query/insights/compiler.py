"""Commands -> one DuckDB statement: a chain of CTEs, one per command, then the projection.

Each stage selects `*` from the one before, adding columns under internal names (`__c1`, ...),
so a field a command defines never collides with a column; the scope maps the names the query
uses to SQL. Before `stats` every record field is reachable: the @ fields and ECS columns by
name, anything else from the `fields` JSON column (`a.b` is the nested key b of a). After
`stats` only its outputs exist. The ORDER BY travels as state and is applied by `limit`,
`dedup` and the final SELECT, since a subquery's order is not kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta

from ecsguard.core.errors import UserError
from ecsguard.logs.query.insights import ast
from ecsguard.logs.query.insights.functions import (
    AGGREGATES,
    BOOL,
    DYN,
    NUM,
    ROW_FUNCTIONS,
    STR,
    TIME,
    Col,
    as_double,
    as_num,
    as_text,
    as_time,
    ident,
    interval,
    literal,
)
from ecsguard.logs.query.insights.lexer import syntax_error
from ecsguard.logs.query.insights.patterns import capture_groups, glob_regex, re2_named_groups
from ecsguard.logs.query.timerange import TimeRange
from ecsguard.logs.records import REQUEST_ID_KEYS

DEFAULT_LIMIT = 10_000  # what Insights returns at most when a query names no limit

#: the @ fields Insights discovers, as columns of the logs view
BUILTINS = {
    "@timestamp": Col('"time"', TIME),
    "@message": Col('"message"', STR),
    "@logStream": Col('"stream"', STR),
    "@log": Col('concat_ws(\'/\', "cluster", "service")', STR),  # a log-group-like name
    "@ingestionTime": Col('"ingest_time"', TIME),
    "@ptr": Col('"id"', STR),
}
#: ECS metadata columns, reachable by their plain names
COLUMNS = ("cluster", "service", "task", "task_definition", "container", "level", "source")
_RAW_ORDER = ['"time" DESC', '"id" DESC']  # newest first, as Insights shows events
_OPERATORS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def json_field(name: str) -> str:
    """The value of `name` in the fields JSON: `a.b` is key b inside a, else the key "a.b"."""

    def pointer(parts: list[str]) -> str:
        return literal("/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts))

    nested = f'json_extract_string("fields", {pointer(name.split("."))})'
    if "." not in name:
        return nested
    return f'coalesce({nested}, json_extract_string("fields", {pointer([name])}))'


@dataclass
class Scope:
    named: dict[str, Col] = field(default_factory=dict)  # fields commands defined
    raw: bool = True  # records (not stats rows): the columns and the fields JSON are there

    def lookup(self, name: str) -> Col | None:
        if name in self.named:
            return self.named[name]
        if not self.raw:
            return None
        if name in BUILTINS:
            return BUILTINS[name]
        if name in COLUMNS:
            return Col(ident(name), STR)
        return Col(json_field(name), DYN)


class Expressions:
    """Compiles expressions against one scope; `stats` allows aggregates and forbids bare fields."""

    def __init__(self, text: str, scope: Scope, now_epoch: int, *, stats: bool = False) -> None:
        self.text = text
        self.scope = scope
        self.now_epoch = now_epoch
        self.stats = stats
        self.in_aggregate = False

    def error(self, node: ast.Node, problem: str, hint: str = "") -> UserError:
        return syntax_error(self.text, node.pos, problem, hint)

    def written(self, node: ast.Node) -> str:
        return self.text[node.pos : node.end]

    # ---------------------------------------------------------------- helpers for functions

    def arg(self, call: ast.Call, index: int) -> Col:
        return self.expr(call.args[index])

    def period(self, call: ast.Call, index: int) -> str:
        node = call.args[index]
        width = interval(node) if isinstance(node, ast.Duration) else None
        if width is None:
            raise self.error(
                node,
                f"{call.name}() needs a period such as 5m or 1h here",
                "units: ms, s, m, h, d, w, mo, q, y; at least 1ms, whole months",
            )
        return width

    def timestamp(self, call: ast.Call) -> Col:
        col = self.scope.lookup("@timestamp")
        if col is None:
            raise self.error(
                call,
                f"{call.name}() needs @timestamp, which is gone after stats",
                "use it before stats, or keep a time in the stats output (by bin(5m))",
            )
        return col

    def string_literal(self, call: ast.Call, index: int, what: str) -> str:
        node = call.args[index]
        if not isinstance(node, ast.Literal) or not isinstance(node.value, str):
            raise self.error(node, f"{call.name}() takes {what} here", "write it in quotes")
        return node.value

    # ------------------------------------------------------------------------- expressions

    def field(self, node: ast.Field) -> Col:
        if self.stats and not self.in_aggregate:
            raise self.error(
                node,
                f"field {node.name!r} must be inside an aggregate function in stats",
                "e.g. stats count(*) by " + node.name,
            )
        col = self.scope.lookup(node.name)
        if col is None:
            known = ", ".join(self.scope.named) or "none"
            raise self.error(
                node, f"unknown field {node.name!r} after stats", f"stats returned: {known}"
            )
        return col

    def expr(self, node: ast.Expr) -> Col:
        if isinstance(node, ast.Field):
            return self.field(node)
        if isinstance(node, ast.Literal):
            return self.constant(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Binary):
            return self.binary(node)
        if isinstance(node, ast.Unary):
            if node.op == "not":
                return Col(f"(NOT {self.cond(node.operand)})", BOOL)
            return Col(f"(-{as_double(self.expr(node.operand))})", NUM)
        if isinstance(node, ast.Like):
            return self.like(node)
        if isinstance(node, ast.In):
            return self.member(node)
        if isinstance(node, ast.Regex):
            raise self.error(node, "a /regex/ goes only after like or =~, or in parse")
        if isinstance(node, ast.Duration):
            raise self.error(
                node,
                f"a period ({self.written(node)}) goes only in bin(), datefloor() or dateceil()",
            )
        raise self.error(node, "* goes only in count(*)")

    def cond(self, node: ast.Expr) -> str:
        col = self.expr(node)
        if col.type == BOOL:
            return col.sql
        if col.type == NUM:
            return f"({col.sql} <> 0)"
        raise self.error(
            node,
            f"{self.written(node)!r} is not a condition",
            'compare it (x = 1, x like "text") or test it (ispresent(x))',
        )

    def constant(self, node: ast.Literal) -> Col:
        if isinstance(node.value, str):
            return Col(literal(node.value), STR)
        if isinstance(node.value, float):
            if not math.isfinite(node.value):
                raise self.error(node, f"the number {self.written(node)} is too large")
            return Col(repr(node.value), NUM)
        if abs(node.value) >= 2**63:
            raise self.error(node, f"the number {self.written(node)} is too large")
        return Col(str(node.value), NUM)

    def binary(self, node: ast.Binary) -> Col:
        if node.op in ("and", "or"):
            return Col(f"({self.cond(node.left)} {node.op.upper()} {self.cond(node.right)})", BOOL)
        left, right = self.expr(node.left), self.expr(node.right)
        if node.op in _OPERATORS:
            sql_op = _OPERATORS[node.op]
            types = {left.type, right.type}
            if TIME in types:
                a, b = as_time(left), as_time(right)
            elif NUM in types:
                a, b = as_num(left), as_num(right)
            elif types == {BOOL}:
                a, b = left.sql, right.sql
            else:
                a, b = as_text(left), as_text(right)
            compared = f"({a} {sql_op} {b})"
            rid = self.request_id(node) if node.op == "=" else None
            if rid is not None:  # the index first: DuckDB skips row groups by its Bloom filter
                compared = f"((request_id IS NULL OR request_id = {literal(rid)}) AND {compared})"
            return Col(compared, BOOL)
        a, b = as_double(left), as_double(right)
        if node.op == "^":
            return Col(f"pow({a}, {b})", NUM)
        return Col(f"({a} {node.op} {b})", NUM)

    def request_id(self, node: ast.Binary) -> str | None:
        """x of `K = "x"` where K is a request-id key of the fields JSON (records.REQUEST_ID_KEYS).
        The `request_id` column is x or null on every record whose key K is the string x, and
        null wherever such a key holds anything else, so adding the column test keeps the rows."""
        for one, other in ((node.left, node.right), (node.right, node.left)):
            if (
                isinstance(one, ast.Field)
                and one.name in REQUEST_ID_KEYS
                and isinstance(other, ast.Literal)
                and isinstance(other.value, str)
            ):
                col = self.scope.lookup(one.name)
                if col is not None and col.sql == json_field(one.name):  # not redefined
                    return other.value
        return None

    def like(self, node: ast.Like) -> Col:
        text = as_text(self.expr(node.operand))
        pattern = node.pattern
        if isinstance(pattern, ast.Regex):
            test = f"regexp_matches({text}, {literal(pattern.pattern)})"
        elif isinstance(pattern, ast.Literal) and isinstance(pattern.value, str):
            test = f"contains({text}, {literal(pattern.value)})"
        else:
            raise self.error(
                pattern,
                'like and =~ take a "substring" or a /regex/',
                "e.g. filter @message like /timeout|refused/",
            )
        return Col(f"(NOT {test})" if node.negated else test, BOOL)

    def member(self, node: ast.In) -> Col:
        for item in node.items:
            if not isinstance(item, ast.Literal):
                raise self.error(item, "in [...] takes strings and numbers", "e.g. in [500, 503]")
        operand = self.expr(node.operand)
        values = [self.constant(item) for item in node.items if isinstance(item, ast.Literal)]
        if all(value.type == NUM for value in values):
            left, items = as_num(operand), [value.sql for value in values]
        else:
            left = as_text(operand)
            items = [as_text(value) for value in values]
        negation = "NOT " if node.negated else ""
        return Col(f"({left} {negation}IN ({', '.join(items)}))", BOOL)

    def call(self, node: ast.Call) -> Col:
        written = self.written(node)
        if written in self.scope.named:
            return self.scope.named[written]  # `sort count(*)` after `stats count(*)`
        name = node.name.lower()
        if name in AGGREGATES:
            if not self.stats:
                raise self.error(node, f"{node.name}() is an aggregate: use it in stats")
            if self.in_aggregate:
                raise self.error(node, f"{node.name}() cannot be inside another aggregate")
            low, high, build = AGGREGATES[name]
            self.arity(node, low, high)
            self.in_aggregate = True
            try:
                return build(self, node)
            finally:
                self.in_aggregate = False
        if name not in ROW_FUNCTIONS:
            raise self.error(
                node,
                f"unknown function {node.name!r}",
                f"known: {', '.join(sorted(ROW_FUNCTIONS))}; in stats: {', '.join(AGGREGATES)}",
            )
        low, high, build = ROW_FUNCTIONS[name]
        self.arity(node, low, high)
        return build(self, node)

    def arity(self, node: ast.Call, low: int, high: int | None) -> None:
        count = len(node.args)
        for arg in node.args:
            if isinstance(arg, ast.Star) and node.name.lower() != "count":
                raise self.error(arg, "* goes only in count(*)")
        if count < low or (high is not None and count > high):
            wanted = f"{low}" if low == high else f"{low} to {high}" if high else f"{low} or more"
            raise self.error(node, f"{node.name}() takes {wanted} arguments, not {count}")


# ------------------------------------------------------------------------------------- stages


@dataclass
class Plan:
    text: str
    now_epoch: int
    ctes: list[str] = field(default_factory=list)
    scope: Scope = field(default_factory=Scope)
    order: list[str] | None = None  # None: the scope's default
    stats_order: list[str] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)
    limit: int | None = None
    deduplicated: bool = False
    counter: int = 0

    def expressions(self, *, stats: bool = False) -> Expressions:
        return Expressions(self.text, self.scope, self.now_epoch, stats=stats)

    def column(self) -> str:
        self.counter += 1
        return f"__c{self.counter}"

    @property
    def current(self) -> str:
        return f"s{len(self.ctes) - 1}"

    def stage(self, sql: str) -> None:
        self.ctes.append(f"s{len(self.ctes)} AS ({sql})")

    def current_order(self) -> list[str]:
        if self.order is not None:
            return self.order
        return list(_RAW_ORDER) if self.scope.raw else list(self.stats_order)

    def order_by(self) -> str:
        order = self.current_order()
        return f" ORDER BY {', '.join(order)}" if order else ""

    def show(self, name: str) -> None:
        if name not in self.shown:
            self.shown.append(name)

    def resolve(self, node: ast.Field) -> Col:
        return self.expressions().field(node)

    # ---------------------------------------------------------------------------- commands

    def run(self, command: ast.Command) -> None:
        if self.deduplicated and not isinstance(command, ast.Limit):
            raise syntax_error(
                self.text, command.pos, f"{command.name} cannot follow dedup", "only limit can"
            )
        if isinstance(command, ast.Fields):
            self.fields(command)
        elif isinstance(command, ast.Display):
            self.shown = []
            for node in command.fields:
                self.resolve(node)
                self.show(node.name)
        elif isinstance(command, ast.Filter):
            condition = self.expressions().cond(command.condition)
            self.stage(f"SELECT * FROM {self.current} WHERE {condition}")
        elif isinstance(command, ast.Stats):
            self.stats(command)
        elif isinstance(command, ast.Sort):
            self.sort(command)
        elif isinstance(command, ast.Limit):
            self.limit = command.count
            self.stage(f"SELECT * FROM {self.current}{self.order_by()} LIMIT {command.count}")
        elif isinstance(command, ast.Parse):
            self.parse(command)
        elif isinstance(command, ast.Dedup):
            self.dedup(command)

    def fields(self, command: ast.Fields) -> None:
        compiler = self.expressions()
        added: list[str] = []
        named: dict[str, Col] = {}
        for item in command.items:
            expr = item.expr
            if isinstance(expr, ast.Field):
                col = compiler.field(expr)
                if item.name != expr.name:  # `fields level as severity`: a second name
                    named[item.name] = col
            else:
                col = compiler.expr(expr)
                internal = self.column()
                added.append(f"{col.sql} AS {internal}")
                named[item.name] = Col(internal, col.type)
            self.show(item.name)
        self.scope.named.update(named)  # after the command: its items cannot see each other
        if added:
            self.stage(f"SELECT *, {', '.join(added)} FROM {self.current}")

    def stats(self, command: ast.Stats) -> None:
        groups = self.expressions()
        aggregates = self.expressions(stats=True)
        select: list[str] = []
        outputs: dict[str, Col] = {}
        by_columns: list[str] = []
        for items, compiler in ((command.by, groups), (command.aggregates, aggregates)):
            for item in items:
                if item.name in outputs:
                    raise syntax_error(
                        self.text,
                        item.expr.pos,
                        f"stats returns {item.name!r} twice",
                        "name one of them with as",
                    )
                col = compiler.expr(item.expr)
                internal = self.column()
                select.append(f"{col.sql} AS {internal}")
                outputs[item.name] = Col(internal, col.type)
                if compiler is groups:
                    by_columns.append(internal)
        group_by = ""
        if by_columns:
            group_by = " GROUP BY " + ", ".join(str(i + 1) for i in range(len(by_columns)))
        self.stage(f"SELECT {', '.join(select)} FROM {self.current}{group_by}")
        self.scope = Scope(outputs, raw=False)
        self.stats_order = [f"{column} ASC NULLS LAST" for column in by_columns]
        self.order = None
        self.shown = list(outputs)

    def sort(self, command: ast.Sort) -> None:
        compiler = self.expressions()
        order: list[str] = []
        for key in command.keys:
            if isinstance(key.expr, ast.Literal):
                continue  # a constant orders nothing (and DuckDB reads `ORDER BY 2` as a column)
            col = compiler.expr(key.expr)
            if col.sql.isdigit():
                continue  # a constant such as now(): DuckDB would read it as a column position
            direction = "DESC" if key.descending else "ASC"
            if col.type == DYN:
                # Insights sorts values that are numbers after all others, numerically
                nulls = "LAST" if key.descending else "FIRST"
                order.append(f"TRY_CAST({col.sql} AS DOUBLE) {direction} NULLS {nulls}")
            order.append(f"{col.sql} {direction} NULLS LAST")
        # ties keep the default order, so a sorted result is the same on every run
        ties = _RAW_ORDER if self.scope.raw else self.stats_order
        self.order = order + [key for key in ties if key not in order]

    def parse(self, command: ast.Parse) -> None:
        source = as_text(self.expressions().expr(command.source))
        if isinstance(command.pattern, ast.Literal):
            assert isinstance(command.pattern.value, str)
            regex, groups = self.glob(command, command.pattern.value)
        else:
            regex, groups = self.regex(command, command.pattern.pattern)
        pattern = literal(regex)
        added = []
        for name, index in groups:
            internal = self.column()
            added.append(
                f"CASE WHEN regexp_matches({source}, {pattern}) "
                f"THEN regexp_extract({source}, {pattern}, {index}) END AS {internal}"
            )
            self.scope.named[name] = Col(internal, DYN)
        self.stage(f"SELECT *, {', '.join(added)} FROM {self.current}")

    def glob(self, command: ast.Parse, glob: str) -> tuple[str, list[tuple[str, int]]]:
        parts = glob.split("*")
        if len(parts) == 1 or len(parts) - 1 != len(command.names):
            raise syntax_error(
                self.text,
                command.pattern.pos,
                f"the pattern has {len(parts) - 1} * but {len(command.names)} names follow as",
                'give one name per *, e.g. parse @message "user=* id=*" as user, id',
            )
        return glob_regex(parts), [(name, i + 1) for i, name in enumerate(command.names)]

    def regex(self, command: ast.Parse, pattern: str) -> tuple[str, list[tuple[str, int]]]:
        if command.names:
            raise syntax_error(
                self.text,
                command.pattern.pos,
                "a /regex/ names its fields with (?<name>...) groups, not with as",
                "drop the as list",
            )
        pattern = re2_named_groups(pattern)
        groups = [(name, i + 1) for i, name in enumerate(capture_groups(pattern)) if name]
        if not groups:
            raise syntax_error(
                self.text,
                command.pattern.pos,
                "the /regex/ has no named group",
                "name what to extract: /user=(?<user>\\S+)/",
            )
        return pattern, groups

    def dedup(self, command: ast.Dedup) -> None:
        keys = [self.resolve(node).sql for node in command.fields]
        any_null = " OR ".join(f"{key} IS NULL" for key in keys)
        self.stage(
            f"SELECT * FROM {self.current} QUALIFY row_number() OVER "
            f"(PARTITION BY {', '.join(keys)}{self.order_by()}) = 1 OR {any_null}"
        )
        self.deduplicated = True

    def select(self) -> tuple[str, list[str]]:
        if not self.shown:
            self.shown = ["@timestamp", "@message"] if self.scope.raw else list(self.scope.named)
        projection = []
        for name in self.shown:
            col = self.expressions().field(ast.Field(0, 0, name))
            projection.append(f"{col.sql} AS {ident(name)}")
        limit = self.limit if self.limit is not None else DEFAULT_LIMIT
        sql = (
            f"WITH {', '.join(self.ctes)} SELECT {', '.join(projection)} "
            f"FROM {self.current}{self.order_by()} LIMIT {limit}"
        )
        return sql, list(self.shown)


def base_stage(table: str, time_range: TimeRange) -> str:
    """Records of the window: `time` for row groups, `dt`/`hour` for Hive partitions."""
    start, end = time_range.start, time_range.end
    last = end - timedelta(microseconds=1)
    return (
        f"SELECT * FROM {ident(table)} WHERE {time_range.sql(ident('time'))} "
        f"AND \"dt\" BETWEEN DATE '{start.date().isoformat()}' "
        f"AND DATE '{last.date().isoformat()}' "
        f'AND ("dt" > DATE \'{start.date().isoformat()}\' OR "hour" >= {start.hour}) '
        f'AND ("dt" < DATE \'{last.date().isoformat()}\' OR "hour" <= {last.hour})'
    )
