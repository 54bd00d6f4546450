"""Enrichment: company and person data appended from outside providers, with provenance.

Below the pipeline and naming no CRM (``.importlinter``). :mod:`.settings` is the model of
``config/rules/enrichment.yaml`` (providers in order, mode, overwrite, consent);
:mod:`.providers` the provider port and the configurable HTTP JSON provider (httpx, tenacity
retries, a token bucket per provider, an outage pause); :mod:`.cache` the cache port and its
store and in-memory implementations; :mod:`.waterfall` decides who is asked about whom and which
values are appended (:func:`~connector.enrich.waterfall.enrich`).

The package imports nothing that sends at import time: ``connector.config.loader`` reads
:mod:`.settings` without pulling in the HTTP client or the store.
"""
