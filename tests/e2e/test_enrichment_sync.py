"""A sync with enrichment on: empty fields filled from the sandbox's providers, written back with
provenance in the audit, and a second run that asks nobody."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from connector.store.db import create_engine_for
from connector.store.models import AuditRow
from crm_sandbox.enrich import EnrichSandbox

from ._cli import sync_summary
from ._crm import hubspot_client
from ._world import Crms, RelayEnv


@pytest.fixture
def enrich_server(crms: Crms, monkeypatch: pytest.MonkeyPatch) -> Iterator[EnrichSandbox]:
    server = EnrichSandbox(crms.seed)
    server.start()
    try:
        settings = server.client_settings()
        for name, value in settings.env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("RELAY_ENRICH_ENABLED", "true")
        yield server
    finally:
        server.stop()


def test_a_sync_enriches_empty_fields_with_provenance_and_a_second_run_asks_nobody(
        relay_env: RelayEnv, crms: Crms, enrich_server: EnrichSandbox) -> None:
    summary = sync_summary("hubspot")
    assert summary["write_failures"] == []
    calls = len(enrich_server.ledger.entries())
    assert calls > 0

    engine = create_engine_for(relay_env.store_url)
    with engine.connect() as db:
        enriched = db.execute(select(AuditRow).where(AuditRow.action == "enriched")).all()
        skipped = db.execute(select(AuditRow).where(AuditRow.action == "not_enriched")).all()
    assert enriched, "no person was enriched"
    # each appended value names its provider and date
    for row in enriched:
        assert row.detail["values"]
        for name, stamp in row.detail["provenance"].items():
            assert name in row.detail["values"] and stamp["provider"] in ("firmographics", "person_data")
            assert stamp["fetched_at"]
    # free-mail people are flagged for manual research, never sent to the company lookup
    assert any(row.detail["manual_research"] for row in skipped + enriched)
    # what the CRM shows: a written field holds the enriched value
    hs = hubspot_client(crms.hubspot)
    writable = {"city": "city", "state": "state", "country": "country", "title": "jobtitle", "company": "company",
                "website": "website", "phone": "phone"}
    checked = 0
    for row in enriched:
        values = {k: v for k, v in row.detail["values"].items() if k in writable}
        if not values:
            continue
        contact = hs.crm.contacts.basic_api.get_by_id(row.crm_id, properties=[writable[k] for k in values])
        for name, value in values.items():
            assert (contact.properties.get(writable[name]) or "").strip() != "", (row.crm_id, name, value)
        checked += 1
    assert checked > 0

    again = sync_summary("hubspot")
    assert again["write_failures"] == []
    assert len(enrich_server.ledger.entries()) == calls  # cached or filled: nobody asked again
