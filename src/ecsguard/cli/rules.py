"""`ecsguard rules`: detection rules as code — validate, test on a file, replay over the store,
reload a running server."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ecsguard.cli.common import (
    data_dir_option,
    make_store_location,
    print_json,
    server_options,
    stderr,
    stdout,
    store_options,
    table,
    time_window_options,
)
from ecsguard.core.config import data_dir as resolve_data_dir
from ecsguard.core.errors import UserError, server_refused
from ecsguard.core.models import Alert


@click.group()
def rules() -> None:
    """Detection rules: YAML files of event patterns, filter patterns, Sigma rules, alarms.

    \b
    Examples:
      ecsguard rules validate rules/
      ecsguard rules test rules/ecs/task-oom.yaml --events events.json
      ecsguard rules run --rules rules/ --since 24h
      ecsguard rules alerts --since 1d
      ecsguard rules reload --server http://127.0.0.1:8080
    """


@rules.command("types")
def types_command() -> None:
    """List the rule types and what each watches."""
    from ecsguard.detect.loader import TYPES

    rows = [(name, ", ".join(t.tables), t.summary) for name, t in TYPES]
    stdout.print(table("Rule types", ["type", "reads", "what"], rows))


@rules.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
def validate(paths: tuple[str, ...]) -> None:
    """Check rule files (or directories of them): every problem with file:line; exit 2 if any."""
    from ecsguard.detect.loader import load_rules

    loaded = load_rules(paths)
    for error in loaded.errors:
        stderr.print(error, markup=False, highlight=False)
    if loaded.errors:
        raise UserError(
            f"{len(loaded.errors)} problem(s), {len(loaded.rules)} valid rule(s)",
            "fix the lines named above",
        )
    counts: dict[str, int] = {}
    for rule in loaded.rules:
        counts[rule.type] = counts.get(rule.type, 0) + 1
    detail = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    stdout.print(f"{len(loaded.rules)} rules valid ({detail})", markup=False, highlight=False)


@rules.command("test")
@click.argument("rule_file", type=str)
@click.option(
    "--events",
    "events_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="ECS/EventBridge events (JSON or NDJSON), a CloudTrail file, or log lines, "
    "as the rule reads.",
)
@click.option("--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
def test(rule_file: str, events_file: str, output: str) -> None:
    """Run the rules of RULE_FILE over a file of records: which match, and why."""
    from ecsguard.detect.loader import TYPES, load_rules
    from ecsguard.detect.replay import evaluate_rule, read_records

    loaded = load_rules([rule_file])
    loaded.raise_errors()
    results = []
    for rule in loaded.rules:
        tables = TYPES.get(rule.type).tables
        table_name = next((t for t in tables if t in ("events", "cloudtrail", "logs")), tables[0])
        batch = read_records(Path(events_file), table_name)
        for match in evaluate_rule(rule, batch, table_name):
            results.append(
                {
                    "rule": rule.id,
                    "time": match.time.isoformat(),
                    "count": match.count,
                    "why": match.summary,
                    "record": next(
                        (str(e.get("id") or e.get("event_id") or "") for e in match.evidence), ""
                    ),
                }
            )
    if output == "json":
        print_json(results)
    else:
        columns = ["rule", "time", "count", "why", "record"]
        stdout.print(table(None, columns, [[r[c] for c in columns] for r in results]))
        stdout.print(f"{len(results)} match(es)", markup=False, highlight=False)
    if not results:
        sys.exit(1)  # like grep: nothing matched


@rules.command("import-sigma")
@click.argument("folder", type=click.Path(exists=True))
@click.option(
    "-o",
    "out",
    type=click.Path(dir_okay=False),
    help="Write an ecsguard rule file referencing each supported Sigma rule (default: only "
    "report).",
)
def import_sigma(folder: str, out: str | None) -> None:
    """Load a SigmaHQ folder as it is (e.g. rules/cloud/aws): report which rules ecsguard runs
    over CloudTrail and why the others cannot run; with -o, write them as a rule file."""
    import yaml

    from ecsguard.detect.types.sigma import import_sigma_dir

    imported, problems = import_sigma_dir(folder)
    for problem in problems:
        stderr.print(f"not imported: {problem}", markup=False, highlight=False)
    stdout.print(
        f"{len(imported)} Sigma rules supported, {len(problems)} not (reasons above)",
        markup=False,
        highlight=False,
    )
    if not out:
        return
    base = Path(folder)
    entries = [
        {
            "id": rule.id,
            "title": rule.title,
            "type": "sigma",
            "severity": rule.severity.value,
            "tags": list(rule.tags),
            # the Sigma file stays the source of truth; the path is absolute so the rule file
            # can live anywhere
            "sigma": {"path": str((base / rule.source.rsplit(":", 1)[0]).resolve())},
        }
        for rule in imported
    ]
    Path(out).write_text(yaml.safe_dump({"rules": entries}, sort_keys=False, allow_unicode=True))
    stdout.print(f"rule file written to {out}", markup=False, highlight=False)


@rules.command("run")
@click.option(
    "--rules",
    "rule_paths",
    multiple=True,
    required=True,
    type=str,
    help="Rule file or directory, or builtin:ecs-operations (repeatable).",
)
@time_window_options
@click.option("--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@data_dir_option
@store_options
def run(
    rule_paths: tuple[str, ...],
    since: str | None,
    start: str | None,
    end: str | None,
    output: str,
    data_dir: str | None,
    store: str | None,
    profile: str | None,
    region: str | None,
    endpoint_url: str | None,
) -> None:
    """Replay a past time range of the store through the rules; the alerts are stored too."""
    from ecsguard.detect.loader import load_rules
    from ecsguard.detect.replay import run_range
    from ecsguard.logs.query.timerange import resolve

    loaded = load_rules(rule_paths)
    loaded.raise_errors()
    alerts = run_range(
        loaded.rules,
        resolve_data_dir(data_dir),
        resolve(since, start, end),
        location=make_store_location(store, endpoint_url, profile, region),
    )
    _print_alerts(alerts, output)


@rules.command("alerts")
@click.option("--since", default="1d", show_default=True, help="How far back.")
@click.option("--rule", help="Only this rule id.")
@click.option("--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@data_dir_option
def alerts_command(since: str, rule: str | None, output: str, data_dir: str | None) -> None:
    """The stored alerts, newest first."""
    from datetime import UTC, datetime

    from ecsguard.detect.engine import AlertStore
    from ecsguard.logs.query.timerange import parse_duration

    store = AlertStore(resolve_data_dir(data_dir) / "detect.db")
    try:
        found = store.alerts(since=datetime.now(UTC) - parse_duration(since), rule=rule)
    finally:
        store.close()
    _print_alerts(found, output)


def _print_alerts(alerts: list[Alert], output: str) -> None:
    if output == "json":
        print_json([a.model_dump(mode="json") for a in alerts])
        return
    rows = [
        (
            a.first_seen.isoformat(timespec="seconds"),
            a.severity.value,
            a.rule_id,
            a.count,
            a.state or "",
            a.summary[:160],
        )
        for a in alerts
    ]
    stdout.print(table(None, ["first seen", "severity", "rule", "count", "state", "summary"], rows))
    stdout.print(f"{len(alerts)} alert(s)", markup=False, highlight=False)


@rules.command("reload")
@server_options
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def reload_command(server: str, token: str | None, output: str) -> None:
    """Make a running `ecsguard serve` read its rule files again, as SIGHUP does: for a server
    in a container, where sending a signal is awkward, after new rules were deployed beside it.

    Every file is checked first. With any problem the running rules stay, the problems are
    printed with their file:line and the exit status is 2.

    \b
    Examples:
      ecsguard rules reload --server http://127.0.0.1:8080
      ECSGUARD_TOKEN=... ecsguard rules reload --server https://ecsguard.internal:8443
    """
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        reply = httpx.post(server.rstrip("/") + "/api/rules/reload", headers=headers, timeout=300)
    except httpx.TransportError:
        raise UserError(
            f"cannot reach the ecsguard server at {server}",
            "start `ecsguard serve --rules PATH`, or point --server / $ECSGUARD_SERVER at it",
        ) from None
    try:
        body = reply.json() if reply.status_code in (200, 422) else None
    except ValueError:  # not an ecsguard server's answer
        body = None
    if not isinstance(body, dict):
        raise server_refused(reply, server, "the reload")
    if output == "json":
        print_json(body)
    if reply.status_code == 422:
        if output == "text":
            for problem in body.get("problems") or []:
                stderr.print(problem, markup=False, highlight=False)
        raise UserError(str(body.get("error")), "fix the lines named above, then reload again")
    if output == "text":
        stdout.print(f"rules reloaded: {body.get('enabled')} enabled", markup=False)
