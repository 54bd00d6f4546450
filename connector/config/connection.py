"""The settings every CRM connection shares (``config/relay.yaml``), whatever the CRM.

Each CRM unit (``connector/crms/<crm>/settings.py``) subclasses :class:`ConnectionSettings`
with its kind, credentials, objects and limits; ``connector/config/relay.py`` joins the
registered units' models into the ``connections`` union.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, field_validator, model_validator

from connector.config._base import ConfigModel
from connector.core.cron import check_cron, crontab_fields

CONNECTION_NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
"""Connection names appear in commands and in Relay's database: keep them simple."""

__all__ = ["CONNECTION_NAME_PATTERN", "ConnectionSettings", "SyncSchedule", "check_cron"]


class SyncSchedule(ConfigModel):
    """When a connection syncs: every N minutes, or a cron expression (UTC). Exactly one."""

    every_minutes: Annotated[int, Field(ge=1, le=1440)] | None = Field(
        default=None, description="Run an incremental sync every N minutes (1-1440)."
    )
    cron: str | None = Field(default=None, description="Five-field cron expression in UTC, e.g. '*/15 * * * *'.")

    @field_validator("cron")
    @classmethod
    def _cron_is_valid(cls, value: str | None) -> str | None:
        return None if value is None else check_cron(value)

    def crontab_fields(self) -> dict[str, str] | None:
        """The cron expression as ``huey.crontab`` keyword arguments, or ``None`` for intervals.

        Returns:
            ``{"minute", "hour", "day", "month", "day_of_week"}`` -> field text.
        """
        return None if self.cron is None else crontab_fields(self.cron)

    @model_validator(mode="after")
    def _exactly_one(self) -> SyncSchedule:
        if (self.every_minutes is None) == (self.cron is None):
            raise ValueError("give exactly one of every_minutes or cron")
        return self


class ConnectionSettings(ConfigModel):
    """What every CRM connection has; each CRM unit's settings model adds its own (``kind`` first).

    A unit's model declares ``kind: Literal["<crm>"]``, its ``credentials``, the ``objects`` it
    can sync, ``page_size`` and ``write_batch_size`` within the CRM's limits.
    """

    kind: str
    if TYPE_CHECKING:  # every unit's model declares these, with its own objects and limits
        objects: Sequence[str]
        page_size: int
        write_batch_size: int
    base_url: str = Field(description="API base URL (the sandbox CRM by default).")
    mapping: str | None = Field(
        default=None,
        description="Name of the mapping file in mappings/ (without .yaml); defaults to the connection kind.",
    )
    schedule: SyncSchedule = Field(
        default_factory=lambda: SyncSchedule(every_minutes=15), description="When to sync."
    )
    write_back: bool = Field(default=True, description="Write Relay's decisions back to the CRM.")
    connect_timeout: float = Field(
        default=5, gt=0, le=60, description="Seconds to connect to the CRM; an unreachable server fails fast."
    )
    read_timeout: float = Field(default=60, gt=0, le=600, description="Seconds to wait for an answer once connected.")
    max_attempts: int = Field(
        default=6, ge=1, le=10,
        description="Attempts per API call, the first included (an unreachable server gets 3 at most).",
    )
    read_lag_seconds: float = Field(
        default=5, ge=0, le=300,
        description="Incremental reads stop this far before the CRM's clock (commit lag): a record changed "
        "during a read is read by the next sync, never skipped.",
    )
    owners_cache_seconds: float = Field(
        default=300, ge=0, le=86_400,
        description="How long the CRM's user list is reused between runs of one process (a worker); 0 reads it "
        "on every run. A rep added or deactivated in the CRM is seen after at most this long.",
    )
    deletions_every_minutes: int = Field(
        default=0, ge=0, le=1_440,
        description="For a CRM that finds deleted records only by listing every archived one (HubSpot): list "
        "them at most this often (0: on every run); a full sync always does. A CRM that reports deletions "
        "with the changes (Salesforce) reads them on every run for nothing.",
    )
    duplicates: Literal["report", "merge", "flag"] = Field(
        default="report",
        description="What relay dedupe run does with the duplicates of one object in this CRM: report them "
        "only, merge them in the CRM (survivor and field values by rules/matching.yaml's survivorship), or flag "
        "each duplicate with a task for its owner naming the record it duplicates.",
    )
    run_deadline_minutes: int | None = Field(
        default=120, ge=1,
        description="A sync run that takes longer stops with RUN_DEADLINE_EXCEEDED (null: no limit); "
        "what it committed stays and the next run resumes from there.",
    )

    @field_validator("base_url")
    @classmethod
    def _base_url_is_http(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL, e.g. https://example.my.salesforce.com")
        return value.rstrip("/")

    @property
    def mapping_name(self) -> str:
        """The mapping file this connection uses (``mappings/<name>.yaml``)."""
        return self.mapping or self.kind


