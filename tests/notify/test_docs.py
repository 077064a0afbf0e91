"""docs/notify.md and the README describe what the code accepts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ecsguard.notify.channels import CHANNELS
from ecsguard.notify.config import ChannelSpec, NotifyConfig, Route, Silence, parse_config

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "notify.md").read_text(encoding="utf-8")


def yaml_blocks(text: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("where", ["docs/notify.md", "README.md"])
def test_the_documented_examples_are_valid(where: str) -> None:
    text = (ROOT / where).read_text(encoding="utf-8")
    blocks = [b for b in yaml_blocks(text) if "channels:" in b and "type:" in b]
    assert blocks, f"no notification example in {where}"
    for block in blocks:
        config = parse_config(block, where)
        assert config.channels


def test_every_channel_type_and_setting_is_documented() -> None:
    for name, channel_type in CHANNELS:
        row = next((line for line in DOC.splitlines() if line.startswith(f"| `{name}` |")), None)
        assert row is not None, f"channel type {name} is missing from docs/notify.md"
        for field, info in channel_type.settings.model_fields.items():
            assert f"`{info.alias or field}`" in row, f"{name}.{info.alias or field} undocumented"


def test_every_common_setting_is_documented() -> None:
    models: list[type] = [NotifyConfig, ChannelSpec, Route, Silence]
    for model in models:
        for field, info in model.model_fields.items():  # type: ignore[attr-defined]
            if field in ("source", "name", "settings", "id", "created"):
                continue  # set by ecsguard, not written by users
            assert re.search(rf"\b{info.alias or field}:", DOC), f"{model.__name__}.{field}"
