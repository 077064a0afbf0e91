"""The output seam: one Finding model for posture findings and (later) rule alerts."""

from __future__ import annotations

from enum import StrEnum

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
