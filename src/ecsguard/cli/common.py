"""Options and rendering shared by commands: AWS CLI-style flags, --output, error output."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # importing boto3 costs most of a second: only commands that call AWS pay it
    from ecsguard.aws.session import AwsOptions
    from ecsguard.logs.store import StoreLocation

F = TypeVar("F", bound=Callable[..., Any])

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)


def stacked(fn: F, decorators: Sequence[Callable[[F], F]]) -> F:
    """`fn` under every decorator, the first listed outermost (so --help lists them in order)."""
    for decorate in reversed(decorators):
        fn = decorate(fn)
    return fn


def aws_options(fn: F) -> F:
    """The AWS CLI's connection flags, in its spelling, with its environment fallbacks."""
    decorators = [
        click.option("--profile", envvar="AWS_PROFILE", help="Named profile from ~/.aws/config."),
        click.option(
            "--region",
            "regions",
            multiple=True,
            help="Region to audit; repeat for several, or `all` for every enabled region. "
            "Default: the profile's or AWS_REGION.",
        ),
        click.option(
            "--endpoint-url",
            envvar="AWS_ENDPOINT_URL",
            help="Send every API call here (an emulator such as moto). Also AWS_ENDPOINT_URL.",
        ),
        click.option("--role-arn", help="Assume this role first (cross-account audits)."),
        click.option(
            "--max-workers",
            type=click.IntRange(1, 64),
            default=8,
            show_default=True,
            help="Concurrent API calls across regions and services.",
        ),
    ]
    return stacked(fn, decorators)


def org_options(what: str) -> Callable[[F], F]:
    """`--org` and how each member account is reached; `what` is the command's verb phrase
    ("Audit", "Collect") for the flag's help."""

    def apply(fn: F) -> F:
        decorators = [
            click.option(
                "--org",
                is_flag=True,
                help=f"{what} every ACTIVE account of the AWS Organization (run with the "
                "management account's credentials): one snapshot per account.",
            ),
            click.option(
                "--role-name",
                help="With --org: the role assumed in each account, e.g. "
                "OrganizationAccountAccessRole or a read-only audit role.",
            ),
            click.option(
                "--external-id", help="With --org: the ExternalId the role's trust policy requires."
            ),
            click.option(
                "--max-concurrency",
                type=click.IntRange(1, 64),
                default=4,
                show_default=True,
                help="With --org: accounts collected at once.",
            ),
        ]
        return stacked(fn, decorators)

    return apply


def make_aws_options(
    profile: str | None,
    regions: Sequence[str],
    endpoint_url: str | None,
    role_arn: str | None,
    max_workers: int,
) -> AwsOptions:
    from ecsguard.aws.session import AwsOptions

    return AwsOptions(
        profile=profile or None,
        regions=tuple(regions),
        endpoint_url=endpoint_url or None,
        role_arn=role_arn,
        max_workers=max_workers,
    )


def output_option(fn: F) -> F:
    return click.option(
        "--output",
        "output",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="Render for people (table) or programs (json).",
    )(fn)


def print_json(data: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    grid = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        # Text, not str: cell values come from AWS and logs and must never be read as markup.
        grid.add_row(*(Text(str(cell)) for cell in row))
    return grid


def write_output(data: bytes, out: str | None) -> bool:
    """Write to `-o FILE` (saying so) or to stdout; True when it went to a file."""
    if out and out != "-":
        Path(out).write_bytes(data)
        stdout.print(f"report written to {out}", markup=False, highlight=False)
        return True
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    return False


def time_window_options(fn: F) -> F:
    """`--since` or `--start`/`--end`, resolved with ecsguard.logs.query.timerange.resolve."""
    decorators = [
        click.option("--since", help="Window ending now: 30s, 15m, 1h, 2d, 1w (default 1h)."),
        click.option("--start", help="Window start: ISO 8601 (UTC by default) or epoch seconds."),
        click.option("--end", help="Window end (exclusive); default now."),
    ]
    return stacked(fn, decorators)


def server_options(fn: F) -> F:
    """`--server` and `--token`: a running `ecsguard serve` to talk to."""
    decorators = [
        click.option(
            "--server",
            envvar="ECSGUARD_SERVER",
            default="http://127.0.0.1:8080",
            show_default=True,
            help="The `ecsguard serve` to talk to (also $ECSGUARD_SERVER).",
        ),
        click.option(
            "--token", envvar="ECSGUARD_TOKEN", help="The server's token ($ECSGUARD_TOKEN)."
        ),
    ]
    return stacked(fn, decorators)


def data_dir_option(fn: F) -> F:
    return click.option(
        "--data-dir", envvar="ECSGUARD_DATA", help="Data directory (default ./ecsguard-data)."
    )(fn)


def store_option(fn: F) -> F:
    """`--store`: where the Parquet store lives (the WAL stays under --data-dir)."""
    return click.option(
        "--store",
        envvar="ECSGUARD_STORE",
        help="The Parquet store: s3://bucket/prefix, or by default DATA_DIR/store. The WAL stays "
        "under --data-dir. Also ECSGUARD_STORE.",
    )(fn)


def store_options(fn: F) -> F:
    """`--store` and how to reach an S3 store, for commands without `aws_options`."""
    decorators = [
        store_option,
        click.option("--profile", envvar="AWS_PROFILE", help="Named profile from ~/.aws/config."),
        click.option("--region", help="AWS region of the store's bucket (and of Athena)."),
        click.option(
            "--endpoint-url",
            envvar="AWS_ENDPOINT_URL",
            help="Send S3 and Athena calls here (an emulator such as moto); AWS_ENDPOINT_URL.",
        ),
    ]
    return stacked(fn, decorators)


def make_store_location(
    store: str | None,
    endpoint_url: str | None = None,
    profile: str | None = None,
    region: str | None = None,
) -> StoreLocation | None:
    """None for the local store under the data directory."""
    from ecsguard.logs.store import StoreLocation

    if not store:
        return None
    return StoreLocation(
        url=store, endpoint_url=endpoint_url or None, profile=profile or None, region=region or None
    )


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None], low: float = 0.0, high: float = 100.0) -> str:
    """A one-line chart of `values` between `low` and `high` (a gap for a missing value)."""
    span = (high - low) or 1.0
    out = []
    for value in values:
        if value is None:
            out.append(" ")
            continue
        level = int((min(max(value, low), high) - low) / span * (len(_BARS) - 1) + 0.5)
        out.append(_BARS[level])
    return "".join(out)
