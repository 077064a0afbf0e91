"""What a check is: metadata validated by a model, and a function of one CheckContext.

A check yields `Result`s (resource, region, passed, evidence params); the engine turns them into
Findings, formatting the metadata's message templates in the report language.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from ecsguard.core.models import Pillar, Severity
from ecsguard.core.registry import Registry

LANGUAGES = ("en", "ja")


class Text(BaseModel):
    """One text in every supported language."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    en: str
    ja: str

    def get(self, lang: str) -> str:
        return getattr(self, lang, self.en)


class CheckMeta(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    severity: Severity
    pillar: Pillar
    resource_type: str
    title: Text
    description: Text
    remediation: Text
    #: message templates; `{name}` placeholders are filled from Result.params
    fail: Text
    passed: Text
    controls: tuple[str, ...] = ()
    #: API actions whose gaps make this check NOT_ASSESSED ("ecs:ListServices")
    needs: tuple[str, ...] = ()

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        service, _, name = value.partition(".")
        if not service or not name or not value.replace("_", "").replace(".", "").isalnum():
            raise ValueError(f"check id {value!r} must look like 'service.what_is_checked'")
        if value != value.lower():
            raise ValueError(f"check id {value!r} must be lower case")
        return value

    @field_validator("controls")
    @classmethod
    def _control_shape(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for control in value:
            if ":" not in control:
                raise ValueError(f"control {control!r} must be FRAMEWORK:ID, e.g. FSBP:ECS.4")
        return value


@dataclass(frozen=True)
class Result:
    resource_arn: str
    region: str
    passed: bool
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    meta: CheckMeta
    fn: Callable[..., Iterable[Result]]


CHECKS: Registry[Check] = Registry("check")


def check(
    **meta: Any,
) -> Callable[[Callable[..., Iterable[Result]]], Callable[..., Iterable[Result]]]:
    """Register a check; the keyword arguments are its CheckMeta (texts as {"en":..,"ja":..})."""
    parsed = CheckMeta.model_validate(meta)

    def decorate(fn: Callable[..., Iterable[Result]]) -> Callable[..., Iterable[Result]]:
        CHECKS.add(parsed.id, Check(parsed, fn))
        return fn

    return decorate
