"""The worker's periodic ``relay.send_notifications``: registered every minute, it sends what is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from huey import MemoryHuey

from connector.notify.alert import AlertKind
from connector.pipeline.alerts import LeadFacts, enqueue_alerts
from connector.store.db import session_factory
from connector.store.migrate import open_store
from connector.store.repositories import Repositories
from crm_sandbox.notify import NotifySandbox
from jobs.tasks import register
from tests.notify.conftest import ALERT_VARIABLES, config_for


def test_the_periodic_job_sends_due_alerts_with_the_process_settings(
    sink: NotifySandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ALERT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in sink.client_settings().env.items():
        monkeypatch.setenv(name, value)
    database = f"sqlite:///{tmp_path / 'relay.db'}"
    monkeypatch.setenv("RELAY_DATABASE_URL", database)
    engine = open_store(database)
    try:
        with session_factory(engine).begin() as session:
            enqueue_alerts(Repositories(session), AlertKind.ASSIGNED, config=config_for(sink),
                           lead=LeadFacts(connection="hubspot", object="contacts", crm_id="5", name="Ada Lovelace",
                                          score=70, category="Warm"),
                           owner_email="liam.walsh@northwind.example", tier="Warm",
                           due=datetime.now(UTC) + timedelta(hours=1), source_key="job-test",
                           now=datetime.now(UTC) - timedelta(seconds=1))
    finally:
        engine.dispose()
    jobs = register(MemoryHuey(immediate=False))
    assert jobs.send_notifications is not None
    for minute in range(3):  # what `relay worker` runs: due every minute
        due = jobs.huey.read_periodic(datetime(2026, 12, 7, 14, minute))
        assert "relay.send_notifications" in {task.name for task in due}

    task: Any = jobs.send_notifications  # a Huey periodic task
    result = jobs.huey.execute(task.s())

    assert result == {"outcomes": {"sent": 1}, "errors": []}
    [mail] = sink.messages.all("email")
    assert mail.to == ("liam.walsh@northwind.example",) and "Ada Lovelace" in (mail.subject or "")
