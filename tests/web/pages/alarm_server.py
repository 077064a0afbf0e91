"""A real server with detection rules and a notification dispatcher, as `ecsguard serve --rules
R --notify N` builds it, for the alarms and settings pages' tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.web.conftest import Running, add_console_users, running

from ecsguard.detect.loader import load_rules
from ecsguard.detect.reloader import RuleReloader
from ecsguard.detect.worker import DetectionWorker
from ecsguard.logs.service import LogService
from ecsguard.notify.config import parse_config
from ecsguard.notify.dispatcher import Dispatcher

#: an ECS placement failure (EventBridge's documented sample) alerts through this rule
PLACEMENT_RULE = """
id: placement-failure
title: Tasks cannot be placed
severity: high
type: event_pattern
group_by: [detail.reason]
event_pattern:
  pattern: {"source": ["aws.ecs"], "detail": {"eventName": ["SERVICE_TASK_PLACEMENT_FAILURE"]}}
"""
CPU_RULE = """
id: api-cpu-high
title: API CPU high
severity: medium
type: metric_alarm
metric_alarm:
  namespace: AWS/ECS
  metric_name: CPUUtilization
  dimensions: {ServiceName: api}
  statistic: Average
  period: 1m
  evaluation_periods: 3
  threshold: 80
  comparison_operator: GreaterThanThreshold
"""


def webhook_config(port: int, token: str) -> str:
    """A webhook channel whose URL carries `token` in its path, the default route to it."""
    return (
        "channels:\n"
        "  hook:\n"
        "    type: webhook\n"
        "    webhook:\n"
        f'      url: "json://127.0.0.1:{port}/hooks/{token}"\n'
        "default:\n"
        "  channels: [hook]\n"
    )


@contextmanager
def serve_with(
    data_dir: Path, rules: list[str] | None = None, notify: str | None = None
) -> Iterator[Running]:
    """A tokenless loopback server with one console user per role; `rules` are YAML texts,
    written into data_dir/rules, the folder POST /api/rules/reload reads again."""
    add_console_users(data_dir)
    service = LogService(data_dir, flush_seconds=0.2)
    dispatcher = Dispatcher(parse_config(notify), data_dir) if notify else None
    detection = reloader = None
    if rules:
        folder = data_dir / "rules"
        folder.mkdir(parents=True, exist_ok=True)
        for number, text in enumerate(rules):
            (folder / f"rule{number}.yaml").write_text(text)
        loaded = load_rules([str(folder)])
        loaded.raise_errors()
        detection = DetectionWorker(service, loaded.rules, data_dir / "detect.db", dispatcher)
        reloader = RuleReloader([str(folder)], detection)
    try:
        with running(data_dir, service, detection, dispatcher, reloader) as server:
            yield server
    finally:
        if dispatcher is not None:
            dispatcher.close()
