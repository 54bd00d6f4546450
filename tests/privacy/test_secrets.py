"""Tokens and secrets are never logged nor stored: the HubSpot private-app token, the Salesforce client
secret and every Salesforce session id the org issued, looked for in Relay's log output and in every
value of every table of the store after syncs (one of them refused for a wrong token)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from connector.adapters.errors import CrmError
from connector.config.loader import load_config
from connector.pipeline.sync import run_sync

from .conftest import (
    HUBSPOT_TOKEN,
    SALESFORCE_SECRET,
    Logs,
    World,
    leaks,
    salesforce_sessions,
    store_texts,
)

WRONG_TOKEN = "pat-na1-deadbeef-0000-4000-8000-00000000dead"
SESSION_SHAPE = re.compile(r"00D[A-Za-z0-9]{12,15}![A-Za-z0-9._-]{8,}")
TOKEN_SHAPE = re.compile(r"pat-[a-z]{2,4}\d?-[0-9a-f]{8}-")


def test_tokens_and_secrets_are_neither_logged_nor_stored(start_world: Callable[[], World], relay_logs: Logs) -> None:
    world = start_world()
    for name in ("salesforce", "hubspot"):
        run_sync(world.config, name, world.engine)
    sessions = salesforce_sessions(world)
    assert len(sessions) >= 2, "Relay authenticated against the Salesforce sandbox (and the test's SDK did)"
    secrets = [HUBSPOT_TOKEN, SALESFORCE_SECRET, *sessions]

    relay = relay_logs.relay_text()
    assert "connector." in relay, "Relay logged at DEBUG: the capture is working"
    assert leaks(relay, secrets) == []
    assert SESSION_SHAPE.search(relay) is None and TOKEN_SHAPE.search(relay) is None

    stored = [(table, column, text) for table, column, text in store_texts(world.engine)
              if any(secret in text for secret in secrets) or SESSION_SHAPE.search(text) or TOKEN_SHAPE.search(text)]
    assert stored == []
    tables = {table for table, _, _ in store_texts(world.engine)}
    assert {"records", "audit_log", "outbox", "sync_runs", "api_calls"} <= tables, "the store was written"


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_run_refused_for_a_wrong_token_keeps_the_token_out_of_the_error_it_logs_and_stores(
    start_world: Callable[[], World], relay_logs: Logs,
) -> None:
    world = start_world()
    config = load_config(env=dict(world.env, HUBSPOT_ACCESS_TOKEN=WRONG_TOKEN))
    with pytest.raises(CrmError):
        run_sync(config, "hubspot", world.engine)
    relay = relay_logs.relay_text()
    assert leaks(relay, [WRONG_TOKEN, HUBSPOT_TOKEN]) == []
    errors = [text for table, column, text in store_texts(world.engine) if (table, column) == ("sync_runs", "error")]
    assert errors, "the refused run is recorded with its error"
    assert all(WRONG_TOKEN not in text and "deadbeef" not in text for text in errors)
