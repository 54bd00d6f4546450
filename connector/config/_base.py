"""The base every configuration model shares: unknown keys are errors."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfigModel(BaseModel):
    """A configuration section. Unknown keys are rejected so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
