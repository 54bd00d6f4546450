"""The ``capture:`` section of ``config/relay.yaml``: where web forms and imported lists send people.

Each source has a name (the ``{source}`` of ``POST /capture/form/{source}`` and the ``--source``
of ``relay import``), the connection and person object its new people are created in, the
environment variable holding its secret, the lead source value written to the CRM, and
optionally the browser origins allowed to post and the CRM fields that receive the source,
UTM parameters and consent.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, field_validator, model_validator

from connector.config._base import ConfigModel
from connector.crms import UnknownCrm, crm_unit

SOURCE_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,49}$"
"""Source names appear in URLs, commands and inbox keys: keep them simple."""
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

CaptureField = Literal[
    "lead_source", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "consent", "consent_version",
]
"""What a source may record in CRM fields of its own choosing (``fields:``); the person's own data
(name, company, title, phone, country) goes through the connection's mapping file."""
CAPTURE_FIELDS: tuple[str, ...] = get_args(CaptureField)

DefaultField = Literal["first_name", "last_name", "company", "title", "country"]
"""Person fields a source may give a value when it creates a person whose submission has none
(Salesforce refuses a Lead without ``LastName`` and ``Company``)."""

_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$|^\*$")


class CaptureSource(ConfigModel):
    """One place people come from: a web form, a partner's system, a list of event attendees."""

    connection: str = Field(description="The connection (in `connections`) the people are found in and created in.")
    object: str = Field(
        description="The person object a new person is created as (HubSpot `contacts`, Salesforce `Lead`); "
        "a known email is updated wherever the connection keeps it (Salesforce: a Contact before a Lead).")
    secret_env: Annotated[str, Field(pattern=ENV_NAME_PATTERN)] = Field(
        description="Name of the environment variable holding the source's secret (header `X-Relay-Secret`). "
        "It has no default: while it is unset or empty, every post to the source is refused with 503.")
    lead_source: str = Field(min_length=1, max_length=255,
                             description="The lead source written to the CRM (only where the record has none).")
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins (`https://www.example.com`) that may post; empty: any. A request whose "
        "Origin header is not listed is refused with 403.")
    fields: dict[str, dict[CaptureField, str]] = Field(
        default_factory=dict,
        description="Per CRM object: which CRM field receives the lead source, each UTM parameter, the consent "
        "purposes (comma-separated) and the consent version. A value with no field here is kept in Relay's "
        "inbox only. HubSpot properties that do not exist are created (group relay, text).")
    create_defaults: dict[DefaultField, str] = Field(
        default_factory=dict,
        description="Values given to a person Relay creates when the submission has none "
        "(e.g. Salesforce's required Company).")

    @field_validator("allowed_origins")
    @classmethod
    def _origins_are_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if not _ORIGIN.match(origin):
                raise ValueError(f"{origin!r} is not an origin: write scheme://host[:port] without a path, e.g. "
                                 "'https://www.example.com'")
        return [origin.lower() for origin in value]

    @field_validator("fields")
    @classmethod
    def _field_names_are_names(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for object_name, targets in value.items():
            for what, name in targets.items():
                if not re.match(r"^[A-Za-z][A-Za-z0-9_]{0,79}$", name):
                    raise ValueError(f"fields.{object_name}.{what}: {name!r} is not a CRM field name")
        return value


class CaptureSettings(ConfigModel):
    """``capture:``: the sources of ``POST /capture/form/{source}`` and ``relay import``."""

    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks (`10.0.0.0/8`) of the proxies in front of `relay serve`: only a "
        "request from one of them has its client address read from X-Forwarded-For.")
    max_body_bytes: int = Field(default=64_000, ge=1_000, le=1_000_000,
                                description="The largest form body taken; larger ones are refused with 413.")
    sources: dict[str, CaptureSource] = Field(
        default_factory=dict,
        description="Sources by name (lower-case letters, digits, - and _; the {source} of the form URL).",
        json_schema_extra={"propertyNames": {"pattern": SOURCE_NAME_PATTERN}},
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: list[str]) -> list[str]:
        for proxy in value:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(f"{proxy!r} is not an IP address or network (e.g. 127.0.0.1 or 10.0.0.0/8)") from None
        return value

    @model_validator(mode="after")
    def _source_names(self) -> CaptureSettings:
        for name in self.sources:
            if not re.match(SOURCE_NAME_PATTERN, name):
                raise ValueError(f"sources.{name}: a source name must be lower-case letters, digits, - and _, "
                                 "starting with a letter (at most 50)")
        return self

    def proxies(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """The trusted proxies as networks."""
        return [ipaddress.ip_network(proxy, strict=False) for proxy in self.trusted_proxies]

    def problems_with(self, connections: Mapping[str, Any]) -> list[tuple[tuple[str, ...], object, str]]:
        """What is wrong with the sources given the configured connections: (key under ``capture``, value, why).

        Each source must name a configured connection and one of its person objects; checked
        with the rest of relay.yaml's cross-file checks, so every problem is reported at once.
        """
        found: list[tuple[tuple[str, ...], object, str]] = []
        for name, source in self.sources.items():
            connection = connections.get(source.connection)
            if connection is None:
                found.append((("sources", name, "connection"), source.connection,
                              f"{source.connection!r} is not a connection in relay.yaml "
                              f"(known: {', '.join(sorted(connections)) or 'none'})"))
                continue
            try:
                people = dict(crm_unit(str(connection.kind)).person_kinds)
            except UnknownCrm:
                continue
            if people and source.object not in people:
                found.append((("sources", name, "object"), source.object,
                              f"{source.object!r} is not a person object of {connection.kind} "
                              f"(use one of {', '.join(sorted(people))})"))
            for object_name in source.fields:
                if people and object_name not in people:
                    found.append((("sources", name, "fields", object_name), object_name,
                                  f"not a person object of {connection.kind} (use {', '.join(sorted(people))})"))
        return found
        for name, source in self.sources.items():
            connection = connections.get(source.connection)
            if connection is None:
                raise ValueError(f"sources.{name}.connection: {source.connection!r} is not a connection in "
                                 f"relay.yaml (known: {', '.join(sorted(connections)) or 'none'})")
            try:
                people = dict(crm_unit(str(connection.kind)).person_kinds)
            except UnknownCrm:
                continue
            if people and source.object not in people:
                raise ValueError(f"sources.{name}.object: {source.object!r} is not a person object of "
                                 f"{connection.kind} (use one of {', '.join(sorted(people))})")
            for object_name in source.fields:
                if people and object_name not in people:
                    raise ValueError(f"sources.{name}.fields.{object_name}: not a person object of {connection.kind} "
                                     f"(use {', '.join(sorted(people))})")
        return self
