"""Enrichment in the page path: a page's people enriched before they are decided.

``rules/enrichment.yaml`` (``connector/enrich/``) says which providers to ask. A sync run with
enrichment enabled opens them once (:class:`PageEnricher`); each page of people is enriched
before the page's transaction (the cache keeps its own short transactions, and no provider call
holds the page's locks), the appended values feed scoring and routing, and the page writes them
back with the decision and audits each with its provider and date. A provider's failure leaves
the person "not enriched" with the reason; it never fails the sync. A dry run does not enrich
(it would call out and fill the cache).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from connector.config.loader import RelayConfig
from connector.core.governance.consent import consent_of
from connector.core.governance.rules import ConsentRules, DispositionRules
from connector.core.models import Person, RecordRef
from connector.enrich.cache import SqlEnrichmentCache
from connector.enrich.providers import HttpJsonProvider, open_providers
from connector.enrich.settings import EnrichmentFile
from connector.enrich.waterfall import Enrichment, Skip, enrich
from connector.pipeline.records import MappedRecord
from connector.store.db import session_factory


class PageEnricher:
    """The providers and cache of one run, and what each page's people got."""

    def __init__(self, settings: EnrichmentFile, engine: Engine, dispositions: DispositionRules | None = None,
                 consent: ConsentRules | None = None) -> None:
        self.settings = settings
        self._providers: dict[str, HttpJsonProvider] = open_providers(settings)
        self._sessions = session_factory(engine)
        self._cache = SqlEnrichmentCache(self._sessions)
        self._dispositions = dispositions or DispositionRules()
        self._consent = consent or ConsentRules()

    @classmethod
    def for_run(cls, config: RelayConfig, engine: Engine | None, *, dry_run: bool) -> PageEnricher | None:
        """The run's enricher, or ``None`` when enrichment is off, the run is dry or there is no store."""
        settings = config.enrichment
        if settings is None or not settings.enabled or not settings.providers or dry_run or engine is None:
            return None
        return cls(settings, engine, config.rules.dispositions, config.rules.consent)

    def enrich_page(self, records: Sequence[MappedRecord], now: datetime) -> dict[RecordRef, Enrichment]:
        """Enrich the page's readable, live people in place (their models carry the appended values).

        Returns:
            Each person's enrichment, by record reference.
        """
        people = [(r, r.model) for r in records
                  if isinstance(r.model, Person) and not r.meta.deleted]
        if not people:
            return {}
        # Imported here: the dispositions module imports the run context, which imports this one.
        from connector.pipeline.dispositions import suppressed_people

        found: dict[RecordRef, Enrichment] = {}
        suppressed = suppressed_people(self._sessions, [person for _, person in people], self._dispositions)
        for person_ref, reason in suppressed.items():  # Do Not Contact: never enriched (a consent refusal)
            found[person_ref] = Enrichment(person_ref, skipped=(Skip("no_consent", reason),))
        people = [(record, person) for record, person in people if person.ref not in suppressed]
        refused: dict[RecordRef, str] = {}  # the consent gate (consent.yaml): a state that allows no enrichment
        for _, person in people:
            consent = consent_of(person, self._consent, self._dispositions)
            if not consent.allows("enrichment"):
                refused[person.ref] = f"no consent: {consent.because('enrichment')} (consent.yaml allows no enrichment)"
        for person_ref, reason in refused.items():
            found[person_ref] = Enrichment(person_ref, skipped=(Skip("no_consent", reason),))
        people = [(record, person) for record, person in people if person.ref not in refused]
        results = enrich([person for _, person in people], self.settings, self._providers, self._cache, now)
        for (record, person), result in zip(people, results, strict=True):
            found[person.ref] = result
            if result.enriched:
                record.model = result.apply(person)
        return found

    def close(self) -> None:
        """Close the providers' HTTP clients."""
        for provider in self._providers.values():
            provider.close()


def audit_detail(result: Enrichment) -> dict[str, Any]:
    """What the audit keeps of one person's enrichment: values with provenance, skips, manual research."""
    return {
        "values": {value.field: str(value.value) for value in result.values},
        "provenance": result.provenance(),
        "skipped": result.reasons(),
        "manual_research": result.manual_research,
    }
