"""Service health: each ECS service's desired/running/pending tasks and latest deployment (from
ECS events and inventory snapshots, as `ecsguard health` shows them), a timeline of the chosen
service's incidents, and its CPU and memory over the range.

Query string: cluster, service, since (or start/end). The charts read the 5-minute rollups
(metrics_5m) up to where the rollup job has got, and the raw metrics table after that.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from ecsguard.core.errors import UserError
from ecsguard.web.auth import ApiError
from ecsguard.web.page import PAGES, Page, PageContext

DEFAULT_SINCE = "24h"
#: timeline entries shown (newest); a chart has at most about this many points
TIMELINE = 200
POINTS = 300
#: (namespace, metric) candidates per chart, the first with data wins
CHARTS: dict[str, tuple[tuple[str, str], ...]] = {
    "cpu": (("AWS/ECS", "CPUUtilization"), ("ECS/ContainerInsights", "CpuUtilized")),
    "memory": (("AWS/ECS", "MemoryUtilization"), ("ECS/ContainerInsights", "MemoryUtilized")),
}
ROLLUP = 300  # seconds of a metrics_5m bucket


def period_for(start: datetime, end: datetime, rollups: bool) -> int:
    """Seconds per chart point: about POINTS points, whole minutes, whole 5 minutes when the
    5-minute rollups feed the chart."""
    unit = ROLLUP if rollups else 60
    raw = (end - start).total_seconds() / POINTS
    return max(unit, math.ceil(raw / unit) * unit)


def metric_chart(
    con: Any,
    candidates: tuple[tuple[str, str], ...],
    dimensions: dict[str, str],
    start: datetime,
    end: datetime,
    rolled_until: datetime | None,
) -> dict[str, Any] | None:
    """Average per period of the first candidate metric with datapoints, one series per
    dimension set (a service name in two clusters is two lines); None without data."""
    # 5-minute rows before the rollup's end (whole buckets only), raw datapoints after it
    cut = start
    if rolled_until is not None and rolled_until > start:
        cut = datetime.fromtimestamp(rolled_until.timestamp() // ROLLUP * ROLLUP, UTC)
    use_rollups = cut > start
    period = period_for(start, end, use_rollups)
    dims = "".join(" AND json_extract_string(dimensions, ?) = ?" for _ in dimensions)
    dim_args = [a for k, v in dimensions.items() for a in (f'$."{k}"', v)]
    for namespace, name in candidates:
        where = f"namespace = ? AND name = ?{dims} AND time >= ? AND time < ?"
        sql = (
            f"WITH points AS ("
            f" SELECT time, dimensions, unit, sum AS total, count AS n FROM metrics_5m"
            f" WHERE {where}"
            f" UNION ALL SELECT time, dimensions, unit, value, 1 FROM metrics WHERE {where})"
            f" SELECT time_bucket(INTERVAL '{period} seconds', time) AS bucket, dimensions,"
            " any_value(unit), sum(total) / sum(n) FROM points"
            " GROUP BY bucket, dimensions ORDER BY dimensions, bucket"
        )
        args = [namespace, name, *dim_args, start, cut, namespace, name, *dim_args, cut, end]
        rows = con.execute(sql, args).fetchall()
        if rows:
            return _chart(namespace, name, period, use_rollups, rows)
    return None


def _chart(
    namespace: str, name: str, period: int, rollups: bool, rows: list[tuple[Any, ...]]
) -> dict[str, Any]:
    import orjson

    x = sorted({int(row[0].replace(tzinfo=UTC).timestamp()) for row in rows})
    index = {moment: i for i, moment in enumerate(x)}
    series: dict[str, list[float | None]] = {}
    for bucket, dimensions, _, value in rows:
        values = series.setdefault(dimensions, [None] * len(x))
        values[index[int(bucket.replace(tzinfo=UTC).timestamp())]] = round(float(value), 3)
    labelled = []
    for dimensions, values in series.items():
        dims = orjson.loads(dimensions)
        label = "/".join(str(dims[k]) for k in ("ClusterName", "ServiceName") if k in dims)
        labelled.append({"label": label or dimensions, "values": values})
    return {
        "namespace": namespace,
        "name": name,
        "unit": rows[0][2],
        "period": period,
        "source": "metrics_5m + metrics" if rollups else "metrics",
        "x": x,
        "series": labelled,
    }


def _charts(
    ctx: PageContext, cluster: str | None, service: str, start: datetime, end: datetime
) -> dict[str, Any]:
    from ecsguard.monitor.rollups import Rollups, connect_with_rollups

    data_dir, store = ctx.app_state.service.data_dir, ctx.app_state.service.location
    dimensions = {"ServiceName": service, **({"ClusterName": cluster} if cluster else {})}
    rolled_until = Rollups(data_dir, store=store).done_until()
    con = connect_with_rollups(data_dir, store)
    try:
        return {
            chart: metric_chart(con, candidates, dimensions, start, end, rolled_until)
            for chart, candidates in CHARTS.items()
        }
    finally:
        con.close()


def data(ctx: PageContext) -> dict[str, Any]:
    from ecsguard.logs.query.timerange import TimeRange
    from ecsguard.monitor.health import collect, summarize

    params = ctx.params
    window = ctx.time_window(DEFAULT_SINCE)
    start, end = window.start, window.end
    cluster = params.get("cluster") or None
    service = params.get("service") or None
    try:
        entries, problems = collect(
            ctx.console.data_dir,
            TimeRange(start, end),
            cluster,
            service,
            store=ctx.app_state.service.location,
        )
    except UserError as err:
        raise ApiError(400, str(err)) from None
    services = summarize(entries, incidents=5)
    timeline = [e.to_dict() for e in entries if e.kind != "counts"][-TIMELINE:][::-1]
    return {
        "range": {
            "since": params.get("since") or ("" if params.get("start") else DEFAULT_SINCE),
            "start": start.isoformat(),
            "end": end.isoformat(),
            "cluster": cluster,
            "service": service,
        },
        "services": [s.to_dict() for s in services],
        "timeline": timeline,
        "problems": problems,
        "charts": _charts(ctx, cluster, service, start, end) if service else None,
    }


PAGES.add(
    "health",
    Page(
        name="health",
        order=60,
        data=data,
        script=True,
        words={
            "en": {
                "title": "Health",
                "cluster": "Cluster",
                "service": "Service",
                "since": "Last",
                "desired": "Desired",
                "running": "Running",
                "pending": "Pending",
                "deployment": "Deployment",
                "stopped": "Stopped tasks",
                "incidents": "Latest incidents",
                "services": "Services",
                "no_services": "No ECS events or snapshots in this range. Send EventBridge's "
                "aws.ecs events to /ingest/ecs-events or run `ecsguard inventory`.",
                "timeline": "Timeline",
                "time": "Time",
                "kind": "Kind",
                "what": "What",
                "no_timeline": "Nothing happened in this range.",
                "cpu": "CPU",
                "memory": "Memory",
                "no_metrics": "No datapoints for this service in this range.",
                "choose": "Choose a service to see its CPU and memory.",
                "source": "{namespace} {name} ({unit}), average per {period} s from {source}",
                "skipped": "Skipped a snapshot: {problem}",
                "all": "all",
                "rollback": "rollback",
            },
            "ja": {
                "title": "ヘルス",
                "cluster": "クラスター",
                "service": "サービス",
                "since": "直近",
                "desired": "必要数",
                "running": "実行中",
                "pending": "保留中",
                "deployment": "デプロイ",
                "stopped": "停止したタスク",
                "incidents": "最新のインシデント",
                "services": "サービス",
                "no_services": "この期間の ECS イベントやスナップショットはありません。"
                "EventBridge の aws.ecs イベントを /ingest/ecs-events に送るか、"
                "`ecsguard inventory` を実行してください。",
                "timeline": "タイムライン",
                "time": "時刻",
                "kind": "種類",
                "what": "内容",
                "no_timeline": "この期間の出来事はありません。",
                "cpu": "CPU",
                "memory": "メモリ",
                "no_metrics": "この期間、このサービスのデータポイントはありません。",
                "choose": "サービスを選ぶと CPU とメモリを表示します。",
                "source": "{namespace} {name} ({unit})、{period} 秒ごとの平均 ({source})",
                "skipped": "スナップショットをスキップしました: {problem}",
                "all": "すべて",
                "rollback": "ロールバック",
            },
        },
    ),
)
