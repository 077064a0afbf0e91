"""A real server with detection rules and a notification dispatcher, as `ecsguard serve --rules
R --notify N` builds it, for the alarms and settings pages' tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from tests.web.conftest import Running, add_console_users

from ecsguard.detect.engine import AlertStore, Engine
from ecsguard.detect.loader import load_rules
from ecsguard.detect.worker import DetectionWorker
from ecsguard.logs.service import LogService
from ecsguard.notify.config import parse_config
from ecsguard.notify.dispatcher import Dispatcher
from ecsguard.web.app import ServerSettings, bind, create_app, make_server

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
    """A tokenless loopback server with one console user per role; `rules` are YAML texts."""
    add_console_users(data_dir)
    service = LogService(data_dir, flush_seconds=0.2)
    dispatcher = Dispatcher(parse_config(notify), data_dir) if notify else None
    detection = None
    if rules:
        files = []
        for number, text in enumerate(rules):
            path = data_dir / f"rule{number}.yaml"
            path.write_text(text)
            files.append(str(path))
        loaded = load_rules(files)
        loaded.raise_errors()
        engine = Engine(loaded.rules, AlertStore(data_dir / "detect.db"))
        detection = DetectionWorker(service, engine, dispatcher)
    config = ServerSettings(host="127.0.0.1", port=0, forward_port=0)
    app = create_app(config, service, detection=detection, dispatcher=dispatcher)
    server = make_server(app, config)
    sock = bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.005)
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            yield Running(url, service, client)
    finally:
        server.should_exit = True
        thread.join(15)
        assert not thread.is_alive(), "server did not shut down"
        if dispatcher is not None:
            dispatcher.close()
