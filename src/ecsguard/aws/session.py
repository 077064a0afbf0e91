"""AWS sessions the way the AWS CLI builds them, plus what an auditor needs on top.

Standard credential sources (`--profile`, environment, SSO, instance roles), `--endpoint-url` or the
standard `AWS_ENDPOINT_URL`, optional assume-role, adaptive retries, and a per-run API call counter
fed by botocore's own event hooks, so nothing has to remember to count.
"""

from __future__ import annotations

import difflib
import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.exceptions as bce
from botocore.config import Config

from ecsguard import __version__
from ecsguard.core.errors import AwsAccessError, UserError

ALL_REGIONS = "all"


@dataclass(frozen=True)
class AwsOptions:
    """How to reach AWS; mirrors the AWS CLI's global options."""

    profile: str | None = None
    regions: tuple[str, ...] = ()
    endpoint_url: str | None = None
    role_arn: str | None = None
    #: the ExternalId the role's trust policy asks for (cross-account roles often do)
    external_id: str | None = None
    max_workers: int = 8
    max_attempts: int = 10
    #: botocore's retry mode; "adaptive" also slows every call of a client after a throttle,
    #: "standard" leaves pacing to the caller (the Kinesis consumer backs off per shard)
    retry_mode: str = "adaptive"
    connect_timeout: float = 5.0
    read_timeout: float = 60.0

    @property
    def effective_endpoint(self) -> str | None:
        return self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None


@dataclass
class ApiCounter:
    """Counts logical API calls per `service:Operation` and HTTP attempts (calls + retries)."""

    calls: Counter[str] = field(default_factory=Counter)
    http_requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def on_call(self, model: Any, **_: Any) -> None:
        name = f"{model.service_model.service_name}:{model.name}"
        with self._lock:
            self.calls[name] += 1

    def on_send(self, **_: Any) -> None:
        with self._lock:
            self.http_requests += 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @property
    def retries(self) -> int:
        return max(0, self.http_requests - self.total)


class AwsSession:
    """A boto3 session with cached thread-safe clients, a call counter and resolved regions."""

    def __init__(self, options: AwsOptions | None = None) -> None:
        self.options = options or AwsOptions()
        self.counter = ApiCounter()
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._identity: dict[str, str] | None = None
        try:
            base = boto3.Session(profile_name=self.options.profile)
        except bce.ProfileNotFound:
            raise UserError(
                f"AWS profile {self.options.profile!r} not found",
                "check the name in ~/.aws/config or omit --profile",
            ) from None
        self._session = self._assume(base) if self.options.role_arn else base
        self._session.events.register("before-call", self.counter.on_call)
        self._session.events.register("before-send", self.counter.on_send)
        self._config = Config(
            retries={"mode": self.options.retry_mode, "max_attempts": self.options.max_attempts},
            connect_timeout=self.options.connect_timeout,
            read_timeout=self.options.read_timeout,
            max_pool_connections=max(10, self.options.max_workers * 2),
            user_agent_extra=f"ecsguard/{__version__}",
        )

    # -- clients ---------------------------------------------------------------------------
    def client(self, service: str, region: str | None = None) -> Any:
        """A cached client; boto3 clients are thread-safe, creating them is not."""
        region = region or self.default_region
        key = (service, region)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._session.client(
                    service,
                    region_name=region,
                    endpoint_url=self.options.endpoint_url,
                    config=self._config,
                )
            return self._clients[key]

    def _assume(self, base: boto3.Session) -> boto3.Session:
        # STS wants a region: the first --region when there is no profile or environment one
        wanted = [r for r in self.options.regions if r != ALL_REGIONS]
        region = base.region_name or (wanted[0] if wanted else None)
        sts = base.client("sts", region_name=region, endpoint_url=self.options.endpoint_url)
        try:
            extra = {"ExternalId": self.options.external_id} if self.options.external_id else {}
            creds = sts.assume_role(
                RoleArn=self.options.role_arn, RoleSessionName=f"ecsguard-{os.getpid()}", **extra
            )["Credentials"]
        except bce.ClientError as err:
            raise AwsAccessError(
                f"cannot assume role {self.options.role_arn}: {_error_text(err)}",
                "check the role's trust policy allows your principal",
            ) from None
        except bce.BotoCoreError as err:
            raise _access_error(err, self.options) from None
        return boto3.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=region,
        )

    # -- identity and regions -----------------------------------------------------------------
    @property
    def default_region(self) -> str:
        if self.options.regions and self.options.regions[0] != ALL_REGIONS:
            return self.options.regions[0]
        region = self._session.region_name
        if not region:
            raise UserError("no AWS region given", "pass --region REGION or set AWS_REGION")
        return region

    def identity(self) -> dict[str, str]:
        """Who we are (STS GetCallerIdentity); also the preflight that fails fast and clearly."""
        if self._identity is None:
            sts = self._session.client(
                "sts",
                region_name=self.default_region,
                endpoint_url=self.options.endpoint_url,
                config=self._config.merge(Config(retries={"mode": "standard", "max_attempts": 2})),
            )
            try:
                reply = sts.get_caller_identity()
            except bce.ClientError as err:
                raise AwsAccessError(
                    f"AWS refused the credentials: {_error_text(err)}",
                    "check AWS_PROFILE / --profile and that the keys are valid",
                ) from None
            except (bce.BotoCoreError, ValueError) as err:
                raise _access_error(err, self.options) from None
            self._identity = {"account": reply["Account"], "arn": reply["Arn"]}
        return self._identity

    def known_regions(self) -> set[str]:
        known: set[str] = set()
        for partition in self._session.get_available_partitions():
            known.update(self._session.get_available_regions("ecs", partition_name=partition))
        return known

    def resolve_regions(self) -> list[str]:
        """The regions to audit: validated names, the configured default, or every enabled one."""
        wanted = list(dict.fromkeys(self.options.regions)) or [self.default_region]
        if ALL_REGIONS in wanted:
            reply = self.client("ec2", self.default_region).describe_regions(AllRegions=False)
            return sorted(r["RegionName"] for r in reply["Regions"])
        known = self.known_regions()
        for region in wanted:
            if region not in known:
                close = difflib.get_close_matches(region, sorted(known), n=1)
                hint = f"did you mean {close[0]}?" if close else "see `aws ec2 describe-regions`"
                raise UserError(f"unknown AWS region {region!r}", hint)
        return wanted


def _error_text(err: bce.ClientError) -> str:
    info = err.response.get("Error", {})
    return f"{info.get('Code', 'Error')}: {info.get('Message', '')}".strip(": ")


def _access_error(err: Exception, options: AwsOptions) -> AwsAccessError:
    if isinstance(err, bce.NoCredentialsError):
        return AwsAccessError(
            "no AWS credentials found",
            "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws configure`",
        )
    if isinstance(err, bce.EndpointConnectionError | bce.ConnectTimeoutError):
        where = options.effective_endpoint or "the AWS endpoint"
        return AwsAccessError(
            f"cannot reach {where}",
            "check the network, --endpoint-url and AWS_ENDPOINT_URL",
        )
    if isinstance(err, ValueError):
        return AwsAccessError(
            f"invalid endpoint: {err}", "pass a URL such as http://127.0.0.1:5000"
        )
    return AwsAccessError(f"AWS request failed: {err}", "check the network and credentials")
