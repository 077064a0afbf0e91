"""The output seam: Finding for posture checks, Alert for detection rules; reports, the console
and notifications render both."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


class Status(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    MUTED = "MUTED"
    ERROR = "ERROR"
    NOT_ASSESSED = "NOT_ASSESSED"


class Pillar(StrEnum):
    SECURITY = "security"
    IAM = "iam"
    LOGGING = "logging"
    MONITORING = "monitoring"


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True)
    check_id: str
    status: Status
    severity: Severity
    resource_arn: str
    region: str
    account: str
    title: str
    message: str
    remediation: str
    pillar: Pillar
    controls: list[str] = Field(default_factory=list)
    resource_type: str = ""
    mute_reason: str | None = None


class Alert(BaseModel):
    """A rule's finding about the running estate: one per rule, key and window (a burst of
    matches is one alert with a count)."""

    model_config = ConfigDict(frozen=True)
    id: str  # stable for (rule, key, window): re-sending it is idempotent
    rule_id: str
    title: str
    severity: Severity
    summary: str  # one line a person reads first
    first_seen: datetime
    last_seen: datetime
    count: int = 1
    key: list[Any] = Field(default_factory=list)  # the rule's group_by values
    evidence: list[dict[str, Any]] = Field(default_factory=list)  # a few matching records
    tags: list[str] = Field(default_factory=list)
    state: str | None = None  # alarms: ALARM, OK, INSUFFICIENT_DATA
    pillar: Pillar = Pillar.MONITORING
