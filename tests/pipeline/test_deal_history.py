"""A deal's field history (CRM values, any order) as the core's stage and field changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from connector.adapters.base import HistoryValue
from connector.config.loader import load_config
from connector.config.mappings import ObjectMapping
from connector.core.governance.models import FieldChange, StageChange
from connector.pipeline.deals import history_changes

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def mappings() -> dict[str, ObjectMapping]:
    config = load_config(REPO / "config", REPO / "mappings", env={})
    return {"salesforce": config.object_mapping("salesforce", "Opportunity"),
            "hubspot": config.object_mapping("hubspot", "deals")}


def test_salesforce_history_becomes_stage_moves_and_amount_changes(mappings: dict[str, ObjectMapping]) -> None:
    values = [  # OpportunityHistory as the adapter gives it: a field only where it changed
        HistoryValue("StageName", "Discovery", T0 + timedelta(days=9), "005B"),
        HistoryValue("StageName", "Prospecting", T0, "005A"),
        HistoryValue("Amount", 10_000.0, T0, "005A"),
        HistoryValue("CloseDate", "2026-04-30", T0, "005A"),
        HistoryValue("Amount", 12_500.0, T0 + timedelta(days=9), "005B"),
        HistoryValue("StageName", "Proposal", T0 + timedelta(days=20), None),
    ]
    changes = history_changes(mappings["salesforce"], values, {"005A": "liam.walsh@northwind.example"})
    assert changes == [
        StageChange(None, "Prospecting", T0, "liam.walsh@northwind.example"),
        StageChange("Prospecting", "Discovery", T0 + timedelta(days=9), "005B"),
        FieldChange("amount", 10_000.0, 12_500.0, T0 + timedelta(days=9), "005B"),
        StageChange("Discovery", "Proposal", T0 + timedelta(days=20), None),
    ]


def test_hubspot_history_repeats_and_unreadable_values_are_skipped(mappings: dict[str, ObjectMapping]) -> None:
    values = [
        HistoryValue("dealstage", "appointmentscheduled", T0, "7"),
        HistoryValue("dealstage", "appointmentscheduled", T0 + timedelta(hours=1), "7"),  # saved again: no move
        HistoryValue("closedate", "2026-04-30T12:00:00.000Z", T0, "7"),
        HistoryValue("closedate", "not a date", T0 + timedelta(days=1), "7"),
        HistoryValue("closedate", "2026-06-30T12:00:00.000Z", T0 + timedelta(days=2), "7"),
        HistoryValue("dealstage", "qualifiedtobuy", T0 + timedelta(days=3), "8"),
        HistoryValue("hs_lastmodifieddate", "2026-03-05T00:00:00Z", T0 + timedelta(days=3), "8"),  # not asked for
    ]
    changes = history_changes(mappings["hubspot"], values, {})
    assert changes == [
        StageChange(None, "appointmentscheduled", T0, "7"),
        FieldChange("close_date", date(2026, 4, 30), date(2026, 6, 30), T0 + timedelta(days=2), "7"),
        StageChange("appointmentscheduled", "qualifiedtobuy", T0 + timedelta(days=3), "8"),
    ]
