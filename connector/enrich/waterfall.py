"""The enrichment waterfall: which provider is asked about whom, and which of its values are appended.

Seed 002 "Lead Enrichment": ``IF email domain != generic THEN append company data, append contact
data ELSE flag for manual research``. For each person, in the order enrichment.yaml lists the
providers:

* no lookup at all when the consent rule refuses the person (``no consent: email_opt_out is true``);
* company lookups go by the email's registered domain (``eu.acme.com`` -> ``acme.com``, Public Suffix
  List), or by the website's when there is no email; a free-mail
  domain is never sent (``free-mail domain gmail.com: manual research``, and the person is flagged
  for manual research); a disposable domain is never sent anywhere;
* a provider is asked only for what it could still fill: with ``overwrite: false`` only empty
  fields are wanted, and a provider none of whose mapped fields is wanted is not asked;
* ``waterfall``: once one provider of a lookup kind found the company (person), the later ones of
  that kind are not asked; ``fill_gaps``: they are, for what is still empty. Per field, the first
  provider in order that has a value wins;
* answers come from the cache while fresh (one read per provider for the whole batch), a key is
  asked once per batch however many people share it, and new answers are cached in one write;
* a provider that fails leaves the person "not enriched" by it, with the reason; nothing raises.

Every appended value carries its provider and the date of the answer (provenance).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from connector.core._email import extract_address
from connector.core.matching.normalize import (
    is_disposable_domain,
    is_free_mail_domain,
    registered_domain,
)
from connector.core.models import Person, RecordRef
from connector.enrich.cache import CachedAnswer, CacheKey, EnrichmentCache, is_fresh
from connector.enrich.providers import Provider, ProviderAnswer
from connector.enrich.settings import EnrichmentFile, LookupKind, ProviderSettings

log = logging.getLogger(__name__)

SkipCode = Literal["disabled", "no_consent", "free_mail", "disposable", "no_key", "nothing_to_fill",
                   "no_provider", "not_found", "failed"]
Source = Literal["cache", "provider"]



def is_free_mail(domain: str | None) -> bool:
    """Whether ``domain`` is a consumer mail provider (the core's one list)."""
    return is_free_mail_domain(domain)


def is_disposable(domain: str | None) -> bool:
    """Whether ``domain`` hands out throwaway addresses (the matcher's ``disposable-email-domains`` list)."""
    return is_disposable_domain(domain)


@dataclass(frozen=True)
class AppendedValue:
    """One value enrichment gives a person, with where it came from.

    Attributes:
        field: The canonical person field.
        value: The new value.
        previous: The value it replaces (None: the field was empty).
        provider: The provider that answered.
        kind: ``company`` or ``person``.
        key: The domain or email it answered about.
        fetched_at: When the provider answered (an answer from the cache keeps its date).
    """

    field: str
    value: Any
    previous: Any
    provider: str
    kind: LookupKind
    key: str
    fetched_at: datetime

    def stamp(self) -> str:
        """``provider YYYY-MM-DD``: how the value is labelled where it is shown."""
        return f"{self.provider} {self.fetched_at.date().isoformat()}"


@dataclass(frozen=True)
class Skip:
    """Something enrichment did not do for a person, and why.

    Attributes:
        code: What kind of reason (``no_consent``, ``free_mail``, ``failed``...).
        reason: In words, e.g. ``provider firmographics failed: timeout after 3 attempts (5 s each)``.
        provider: The provider concerned, if one.
        kind: The lookup concerned, if one.
    """

    code: SkipCode
    reason: str
    provider: str | None = None
    kind: LookupKind | None = None


@dataclass(frozen=True)
class Lookup:
    """One answer used for a person: whose, about what, from where, with which outcome."""

    provider: str
    kind: LookupKind
    key: str
    source: Source
    outcome: str
    fetched_at: datetime | None


@dataclass(frozen=True)
class Enrichment:
    """What enrichment did for one person.

    Attributes:
        person: The person's record.
        values: The values appended, in field order of the providers (each with provenance).
        skipped: What was not done and why.
        lookups: The answers consulted (cache or provider).
        manual_research: True when the company cannot be looked up because the email is free mail
            (seed 002: "Flag for manual research").
    """

    person: RecordRef
    values: tuple[AppendedValue, ...] = ()
    skipped: tuple[Skip, ...] = ()
    lookups: tuple[Lookup, ...] = ()
    manual_research: bool = False

    @property
    def enriched(self) -> bool:
        """True when at least one value was appended."""
        return bool(self.values)

    def field_updates(self) -> dict[str, Any]:
        """Canonical field -> new value, to write back to the CRM."""
        return {value.field: value.value for value in self.values}

    def provenance(self) -> dict[str, dict[str, str]]:
        """Canonical field -> ``{"provider", "key", "fetched_at"}`` of its appended value (for the audit)."""
        return {value.field: {"provider": value.provider, "key": value.key,
                              "fetched_at": value.fetched_at.isoformat()} for value in self.values}

    def apply(self, person: Person) -> Person:
        """``person`` with the appended values (for the stages after enrichment: scoring, routing)."""
        updates = self.field_updates()
        return person.model_copy(update=updates) if updates else person

    def reasons(self) -> list[str]:
        """The skipped reasons, in order."""
        return [skip.reason for skip in self.skipped]


@dataclass
class _State:
    """One person's progress through the providers."""

    person: Person
    wanted: set[str]
    company_key: str | None = None
    person_key: str | None = None
    key_problem: dict[str, Skip] = field(default_factory=dict)
    filled: dict[str, AppendedValue | None] = field(default_factory=dict)
    answered: set[str] = field(default_factory=set)
    values: list[AppendedValue] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    lookups: list[Lookup] = field(default_factory=list)
    manual_research: bool = False
    done: bool = False

    def key(self, kind: LookupKind) -> str | None:
        return self.company_key if kind == "company" else self.person_key

    def still_wanted(self) -> set[str]:
        return self.wanted - self.filled.keys()

    def result(self) -> Enrichment:
        return Enrichment(self.person.ref, tuple(self.values), tuple(self.skipped), tuple(self.lookups),
                          self.manual_research)


def enrich(people: Iterable[Person], settings: EnrichmentFile, providers: Mapping[str, Provider],
           cache: EnrichmentCache, now: datetime) -> list[Enrichment]:
    """Enrich a batch of people through the configured providers; never raises for a provider's failure.

    Args:
        people: The people (canonical, ideally cleaned by hygiene first).
        settings: enrichment.yaml.
        providers: Provider by name (:func:`connector.enrich.providers.open_providers`); a configured
            provider missing here is reported as unavailable.
        cache: Where answers are kept between runs.
        now: The time: freshness of cached answers, and the date of new ones.

    Returns:
        One :class:`Enrichment` per person, in input order.
    """
    people = list(people)
    if not settings.enabled:
        skip = Skip("disabled", "enrichment is disabled (enrichment.yaml enabled: false)")
        return [Enrichment(person.ref, skipped=(skip,)) for person in people]
    states = [_start(person, settings) for person in people]
    for provider_settings in settings.providers:
        _ask(provider_settings, states, settings, providers, cache, now)
    return [state.result() for state in states]


def _start(person: Person, settings: EnrichmentFile) -> _State:
    targets = set().union(*(p.targets() for p in settings.providers)) if settings.providers else set()
    wanted = {name for name in targets if settings.overwrite or _empty(getattr(person, name))}
    state = _State(person, wanted)
    refusal = settings.consent.refusal(person.model_dump(include=set(settings.consent.require)))
    if refusal is not None:
        state.skipped.append(Skip("no_consent", refusal))
        state.done = True
        return state
    if not wanted:
        state.skipped.append(Skip("nothing_to_fill", "nothing to fill: every field the providers map is already set"))
        state.done = True
        return state
    email = extract_address(person.email)
    domain = email.rsplit("@", 1)[1] if email else None
    if domain is not None and (is_disposable(domain) or is_disposable(registered_domain(domain))):
        skip = Skip("disposable", f"disposable email domain {domain}: not sent to any provider")
        state.key_problem = {"company": skip, "person": skip}
        return state
    state.person_key = email
    if email is None:
        state.key_problem["person"] = Skip("no_key", "no valid email to look the person up by", kind="person")
    if domain is not None and (is_free_mail(domain) or is_free_mail(registered_domain(domain))):
        state.key_problem["company"] = Skip("free_mail", f"free-mail domain {domain}: manual research", kind="company")
        state.manual_research = True
    elif domain is not None:
        state.company_key = registered_domain(domain) or domain
    else:
        website = registered_domain(person.website)
        if website is not None and not is_free_mail(website) and not is_disposable(website):
            state.company_key = website
        else:
            state.key_problem["company"] = Skip("no_key", "no work email or website to look the company up by",
                                                kind="company")
    return state


def _needed(state: _State, provider: ProviderSettings, settings: EnrichmentFile) -> bool:
    if state.done or not (provider.targets() & state.still_wanted()):
        return False
    if settings.mode == "waterfall" and provider.lookup in state.answered:
        return False
    if state.key(provider.lookup) is None:
        problem = state.key_problem.get(provider.lookup)
        if problem is not None and problem not in state.skipped:
            state.skipped.append(problem)
        return False
    return True


def _ask(provider_settings: ProviderSettings, states: Sequence[_State], settings: EnrichmentFile,
         providers: Mapping[str, Provider], cache: EnrichmentCache, now: datetime) -> None:
    name, kind = provider_settings.name, provider_settings.lookup
    asking = [state for state in states if _needed(state, provider_settings, settings)]
    if not asking:
        return
    provider = providers.get(name)
    if provider is None:
        for state in asking:
            state.skipped.append(Skip("no_provider", f"provider {name} is not available", name, kind))
        return
    keys = sorted({key for state in asking if (key := state.key(kind)) is not None})
    kept = _read(cache, [(name, kind, key) for key in keys])
    answers: dict[str, tuple[ProviderAnswer, Source, datetime | None]] = {}
    new: list[CachedAnswer] = []
    for key in keys:
        cached = kept.get((name, kind, key))
        if cached is not None and is_fresh(cached, provider_settings, now):
            answer = ProviderAnswer(name, kind, key, cached.outcome, cached.values,
                                    None if cached.outcome == "found" else f"{name} knows no {kind} {key} (cached)")
            answers[key] = (answer, "cache", cached.fetched_at)
            continue
        answer = _call(provider, kind, key)
        answers[key] = (answer, "provider", now)
        if answer.cacheable and answer.outcome in ("found", "not_found"):
            outcome: Literal["found", "not_found"] = "found" if answer.outcome == "found" else "not_found"
            new.append(CachedAnswer(name, kind, key, provider_settings.version(), outcome, now, dict(answer.values)))
    _write(cache, new)
    for state in asking:
        key = state.key(kind)
        assert key is not None
        answer, source, fetched_at = answers[key]
        _take(state, answer, source, fetched_at or now, settings)


def _call(provider: Provider, kind: LookupKind, key: str) -> ProviderAnswer:
    try:
        return provider.lookup(kind, key)
    except Exception as exc:  # a provider must not raise; one that does is a failed lookup, not a failed sync
        log.exception("enrichment provider %s raised looking up %s %s", provider.name, kind, key)
        return ProviderAnswer(provider.name, kind, key, "failed", reason=f"{type(exc).__name__}: {exc}",
                              cacheable=False)


def _take(state: _State, answer: ProviderAnswer, source: Source, fetched_at: datetime,
          settings: EnrichmentFile) -> None:
    state.lookups.append(Lookup(answer.provider, answer.kind, answer.key, source, answer.outcome,
                                fetched_at if answer.outcome != "failed" else None))
    if answer.outcome == "failed":
        state.skipped.append(Skip("failed", f"provider {answer.provider} failed: {answer.reason}",
                                  answer.provider, answer.kind))
        return
    if answer.outcome == "not_found":
        state.skipped.append(Skip("not_found", f"provider {answer.provider}: {answer.reason or 'not found'}",
                                  answer.provider, answer.kind))
        return
    state.answered.add(answer.kind)
    for name, value in answer.values.items():
        if name not in state.still_wanted():
            continue
        current = getattr(state.person, name)
        if not _empty(current) and not settings.overwrite:
            continue
        if not _empty(current) and _same(current, value):
            state.filled[name] = None  # already right: later providers do not change it either
            continue
        appended = AppendedValue(name, value, None if _empty(current) else current, answer.provider, answer.kind,
                                 answer.key, fetched_at)
        state.filled[name] = appended
        state.values.append(appended)


def _read(cache: EnrichmentCache, keys: list[CacheKey]) -> dict[CacheKey, CachedAnswer]:
    if not keys:
        return {}
    try:
        return cache.get_many(keys)
    except Exception:  # the cache is an optimisation: unreadable, every provider is asked
        log.warning("enrichment cache could not be read; asking the providers", exc_info=True)
        return {}


def _write(cache: EnrichmentCache, answers: list[CachedAnswer]) -> None:
    if not answers:
        return
    try:
        cache.put_many(answers)
    except Exception:  # the cache is an optimisation: unwritable, the answers are asked again next time
        log.warning("enrichment cache could not be written (%d answers)", len(answers), exc_info=True)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _same(current: Any, new: Any) -> bool:
    if isinstance(current, str) and isinstance(new, str):
        return current.strip().casefold() == new.strip().casefold()
    return bool(current == new)


@dataclass(frozen=True)
class EnrichmentSummary:
    """Enrichment coverage of a batch (for the data-quality report).

    Attributes:
        people: People in the batch.
        enriched: People given at least one value.
        values: Values appended, by field.
        skipped: Skip reasons counted by code (a person may count under several).
        manual_research: People flagged for manual research (free-mail, no company lookup).
        provider_calls: Distinct keys asked of each provider (one call each, retries aside).
        cache_hits: Distinct keys each provider's cached answers served.
    """

    people: int
    enriched: int
    values: Mapping[str, int]
    skipped: Mapping[str, int]
    manual_research: int
    provider_calls: Mapping[str, int]
    cache_hits: Mapping[str, int]

    @property
    def coverage(self) -> float:
        """Share of the people enriched (0 for an empty batch)."""
        return self.enriched / self.people if self.people else 0.0


def summarize(enrichments: Sequence[Enrichment]) -> EnrichmentSummary:
    """Counts over a batch's enrichments (see :class:`EnrichmentSummary`)."""
    values: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    asked: dict[Source, set[tuple[str, str, str]]] = {"cache": set(), "provider": set()}
    for enrichment in enrichments:
        values.update(value.field for value in enrichment.values)
        skipped.update({skip.code for skip in enrichment.skipped})
        for lookup in enrichment.lookups:
            asked[lookup.source].add((lookup.provider, lookup.kind, lookup.key))
    calls = Counter(provider for provider, _, _ in asked["provider"])
    hits = Counter(provider for provider, _, _ in asked["cache"])
    return EnrichmentSummary(len(enrichments), sum(1 for e in enrichments if e.enriched), dict(values),
                             dict(skipped), sum(1 for e in enrichments if e.manual_research), dict(calls), dict(hits))


__all__ = [
    "AppendedValue",
    "Enrichment",
    "EnrichmentSummary",
    "Lookup",
    "Skip",
    "enrich",
    "is_disposable",
    "summarize",
]
