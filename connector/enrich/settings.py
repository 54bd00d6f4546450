"""The model of ``config/rules/enrichment.yaml``: providers in order, how answers map, consent, caching.

Seed 002 "Lead Enrichment": ``IF email domain != generic THEN append company data, append contact
data ELSE flag for manual research``; seed 001 item 2.1.1 "Append firmographic data via enrichment
API". Unknown keys are errors, as in every rule file.

A provider's ``url`` and ``auth_value`` (and the file's ``enabled``) may read the environment
(``${RELAY_ENRICH_API_KEY}``): the loader substitutes ``enabled`` and ``providers`` only. The
shipped file is disabled (``enabled: ${RELAY_ENRICH_ENABLED:-false}``) so that nothing calls out
by default; the sandbox's enrichment server exports ``RELAY_ENRICH_ENABLED=true`` with its URL
and key, so ``relay demo`` enriches.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from connector.config._base import ConfigModel
from connector.config.canonical import CANONICAL_FIELDS, FieldType
from connector.enrich._jsonpath import Step, parse_path

LookupKind = Literal["company", "person"]
"""``company``: looked up by the email's domain; ``person``: by the email address."""

PLACEHOLDER: dict[str, str] = {"company": "domain", "person": "email"}
"""Lookup kind -> the placeholder its URL (or body) must hold."""

ENRICHABLE_FIELDS: dict[str, FieldType] = {
    name: CANONICAL_FIELDS["person"][name]
    for name in ("first_name", "last_name", "phone", "title", "company", "website", "industry",
                 "employees", "annual_revenue", "country", "state", "city")
}
"""Canonical person fields an answer may fill (Relay's own fields, keys and activity are never enriched)."""

PROVIDER_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,49}$"
SUBSTITUTED_SECTIONS = ("enabled", "providers")
"""The top-level keys whose values may be environment references (URLs, API keys, the switch)."""

_PLACEHOLDERS = re.compile(r"\{([^{}]*)\}")


def _custom(loc: tuple[str | int, ...], code: str, message: str, value: Any) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError(code, message), loc=loc, input=value)


def _placeholder_problems(text: str, kind: LookupKind) -> str | None:
    wanted = PLACEHOLDER[kind]
    found = _PLACEHOLDERS.findall(text)
    stray = [name for name in found if name != wanted]
    if stray:
        return f"unknown placeholder {{{stray[0]}}}; a {kind} lookup fills {{{wanted}}} only"
    return None


class ProviderSettings(ConfigModel):
    """One enrichment provider: an HTTP API answering JSON, and how its answer maps to person fields."""

    name: str = Field(pattern=PROVIDER_NAME_PATTERN,
                      description="Lower-case name, unique; stamped on every value it appends (provenance).")
    kind: Literal["http_json"] = Field(default="http_json", description="http_json: an HTTP API that answers JSON.")
    lookup: LookupKind = Field(description="company: looked up by the email's domain ({domain}); "
                                           "person: by the email address ({email}).")
    url: str = Field(description="URL template with {domain} or {email} (URL-encoded when filled), e.g. "
                                 "https://company.example.com/v2/companies/find?domain={domain}.")
    method: Literal["GET", "POST"] = Field(default="GET")
    body: dict[str, str] | None = Field(
        default=None, description="POST only: the JSON object sent, its values templates ({\"email\": \"{email}\"}).")
    auth_header: str = Field(default="Authorization", min_length=1, pattern=r"^[A-Za-z0-9-]+$",
                             description="The header carrying the credential (Authorization, X-Api-Key, ...).")
    auth_value: SecretStr = Field(
        default=SecretStr(""), description="Its value, from the environment (\"Bearer ${RELAY_ENRICH_API_KEY}\"); "
                                           "empty: no header is sent.")
    fields: dict[str, str] = Field(
        min_length=1, description="JSON path in the answer -> canonical person field it fills "
                                  "($.category.industry: industry). Several paths may fill one field: the first "
                                  "with a value wins.")
    error_path: str | None = Field(
        default=None, description="JSON path of an error the API may put in a 200 answer ($.error): "
                                  "when it holds a value the lookup failed.")
    timeout_seconds: float = Field(default=5.0, gt=0, le=120, description="Per attempt (connect and read).")
    max_attempts: int = Field(default=3, ge=1, le=10, description="Attempts per lookup: 429, 5xx and timeouts "
                                                                  "are retried, other answers are not.")
    backoff_seconds: float = Field(default=0.5, ge=0, le=60,
                                   description="First wait between attempts, doubling (with jitter) unless "
                                               "the API says Retry-After.")
    max_retry_after_seconds: float = Field(
        default=30.0, ge=0, le=3600,
        description="A Retry-After longer than this is not waited for: the lookup fails (not enriched this time).")
    rate_limit_per_second: float = Field(default=5.0, gt=0, le=10_000,
                                         description="Requests per second this process sends the provider.")
    burst: int = Field(default=1, ge=1, le=10_000, description="Requests that may go at once after a quiet spell.")
    failures_before_pause: int = Field(
        default=3, ge=1, le=1000,
        description="Lookups failing in a row before the provider counts as down: lookups then fail at once "
                    "(no call) for pause_seconds, so an outage costs one sync a few seconds, not minutes.")
    pause_seconds: float = Field(default=60.0, ge=0, le=86_400)
    cache_ttl_days: float = Field(default=30.0, ge=0, le=3650,
                                  description="How long an answer that found something is reused (0: not cached).")
    not_found_ttl_days: float = Field(default=7.0, ge=0, le=3650,
                                      description="How long a 'not found' is reused before asking again.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"'{value}' must start with https:// (or http:// for a local server)")
        return value

    @model_validator(mode="after")
    def _check(self) -> ProviderSettings:
        errors: list[InitErrorDetails] = []
        wanted = "{" + PLACEHOLDER[self.lookup] + "}"
        stray = _placeholder_problems(self.url, self.lookup)
        if stray:
            errors.append(_custom(("url",), "placeholder", stray, self.url))
        templates = [self.url, *(self.body or {}).values()]
        if not stray and not any(wanted in text for text in templates):
            errors.append(_custom(("url",), "placeholder",
                                  f"a {self.lookup} lookup needs {wanted} in its url (or body)", self.url))
        if self.method == "GET" and self.body is not None:
            errors.append(_custom(("body",), "body_with_get", "body is only sent with method: POST", self.body))
        for key, text in (self.body or {}).items():
            problem = _placeholder_problems(text, self.lookup)
            if problem:
                errors.append(_custom(("body", key), "placeholder", problem, text))
        for path, target in self.fields.items():
            try:
                parse_path(path)
            except ValueError as exc:
                errors.append(_custom(("fields", path), "json_path", f"{exc} (it maps to {target!r})", path))
            if target not in ENRICHABLE_FIELDS:
                errors.append(_custom(("fields", path), "unknown_field",
                                      f"'{target}' is not a person field enrichment fills "
                                      f"(one of: {', '.join(ENRICHABLE_FIELDS)})", target))
        if self.error_path is not None:
            try:
                parse_path(self.error_path)
            except ValueError as exc:
                errors.append(_custom(("error_path",), "json_path", str(exc), self.error_path))
        if errors:
            raise ValidationError.from_exception_data("ProviderSettings", errors)
        return self

    def mapping(self) -> list[tuple[str, tuple[Step, ...], str]]:
        """``(path as written, its steps, canonical field)`` in file order."""
        return [(path, parse_path(path), target) for path, target in self.fields.items()]

    def targets(self) -> frozenset[str]:
        """The canonical fields this provider can fill."""
        return frozenset(self.fields.values())

    def version(self) -> str:
        """A hash of what shapes this provider's cached answers (lookup, URL, method, body, mapping).

        A cached answer made under another version is not reused: changing the mapping or the
        URL asks the provider again instead of serving values mapped the old way.
        """
        shape = {"lookup": self.lookup, "url": self.url, "method": self.method, "body": self.body,
                 "fields": self.fields}
        return hashlib.sha256(json.dumps(shape, sort_keys=True).encode("utf-8")).hexdigest()[:16]


ConsentValue = bool | int | float | str | None


def _not_opted_out() -> dict[str, list[ConsentValue]]:
    return {"email_opt_out": [False, None]}


class ConsentRule(ConfigModel):
    """Which consent fields must hold which values for a person to be enriched.

    Relay's canonical person has one consent field today, ``email_opt_out`` (Salesforce
    ``HasOptedOutOfEmail``, HubSpot ``hs_email_optout``); a field added later (a processing
    opt-out, a GDPR basis) is listed here the same way. ``null`` stands for an empty field.
    """

    require: dict[str, list[ConsentValue]] = Field(
        default_factory=_not_opted_out,
        description="Canonical person field -> the values that allow enrichment (null: empty). Every field "
                    "listed must hold one of its values. Default: not opted out (false or empty).",
    )

    @model_validator(mode="after")
    def _check(self) -> ConsentRule:
        errors: list[InitErrorDetails] = []
        person = CANONICAL_FIELDS["person"]
        for name, values in self.require.items():
            kind = person.get(name)
            if kind is None:
                errors.append(_custom(("require", name), "unknown_field",
                                      f"no person field '{name}' (consent fields today: email_opt_out)", name))
                continue
            if not values:
                errors.append(_custom(("require", name), "empty", "list at least one value (null: empty)", values))
            for index, value in enumerate(values):
                if value is not None and not _fits(value, kind):
                    errors.append(_custom(("require", name, index), "wrong_type",
                                          f"'{name}' holds {kind} values, got {value!r}", value))
        if errors:
            raise ValidationError.from_exception_data("ConsentRule", errors)
        return self

    def refusal(self, values: dict[str, Any]) -> str | None:
        """Why a person with these field values may not be enriched (None: they may)."""
        for name, allowed in self.require.items():
            value = values.get(name)
            if isinstance(value, str) and not value.strip():
                value = None
            if not any(_same(value, option) for option in allowed):
                shown = "empty" if value is None else json.dumps(value)
                wanted = " or ".join("empty" if v is None else json.dumps(v) for v in allowed)
                return f"no consent: {name} is {shown} (enrichment needs {wanted})"
        return None


def _fits(value: ConsentValue, kind: FieldType) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if kind in ("int", "float"):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, str)


def _same(value: Any, option: ConsentValue) -> bool:
    if option is None or value is None:
        return option is None and value is None
    if isinstance(option, bool) or isinstance(value, bool):
        return isinstance(option, bool) and isinstance(value, bool) and option is value
    return bool(value == option)


class EnrichmentFile(ConfigModel):
    """Enrichment (``config/rules/enrichment.yaml``): providers in order, mode, overwrite, consent."""

    enabled: bool = Field(default=False, description="false: nothing is looked up (the shipped default).")
    mode: Literal["waterfall", "fill_gaps"] = Field(
        default="waterfall",
        description="waterfall: per lookup kind, the first provider that finds the company (person) answers "
                    "and the next ones are not asked; fill_gaps: later providers are asked for what earlier "
                    "ones left empty. Either way, per field the first provider in order wins.")
    overwrite: bool = Field(default=False, description="false: only empty fields are filled; true: a provider's "
                                                       "value replaces a different one already there.")
    providers: list[ProviderSettings] = Field(default_factory=list, description="In the order they are asked.")
    consent: ConsentRule = Field(default_factory=ConsentRule)

    @model_validator(mode="after")
    def _unique_names(self) -> EnrichmentFile:
        errors: list[InitErrorDetails] = []
        seen: set[str] = set()
        for index, provider in enumerate(self.providers):
            if provider.name in seen:
                errors.append(_custom(("providers", index, "name"), "duplicate",
                                      f"provider name '{provider.name}' is used twice", provider.name))
            seen.add(provider.name)
        if self.enabled and not self.providers:
            errors.append(_custom(("providers",), "no_providers", "enabled: true needs at least one provider", []))
        if errors:
            raise ValidationError.from_exception_data("EnrichmentFile", errors)
        return self

    def provider(self, name: str) -> ProviderSettings:
        """The provider called ``name``.

        Raises:
            KeyError: naming the configured providers.
        """
        for provider in self.providers:
            if provider.name == name:
                return provider
        raise KeyError(f"no enrichment provider {name!r} (configured: "
                       f"{', '.join(p.name for p in self.providers) or 'none'})")


__all__ = [
    "ENRICHABLE_FIELDS",
    "PLACEHOLDER",
    "SUBSTITUTED_SECTIONS",
    "ConsentRule",
    "EnrichmentFile",
    "LookupKind",
    "ProviderSettings",
]
