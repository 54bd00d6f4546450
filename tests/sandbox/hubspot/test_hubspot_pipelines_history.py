"""Deal pipelines and ``dealstage`` history through the official SDK (hubspot-api-client)."""

from __future__ import annotations

import pytest
from hubspot import HubSpot
from hubspot.crm.deals import (
    BatchReadInputSimplePublicObjectId,
    SimplePublicObjectId,
    SimplePublicObjectInput,
)
from hubspot.crm.deals import SimplePublicObjectInputForCreate as DealInput
from hubspot.crm.pipelines import ApiException as PipelineError
from hubspot_portal import Seed, client, hs, sandbox

from crm_sandbox.hubspot import HubSpotSandbox

__all__ = ["hs", "sandbox"]

SEEDED_HISTORY = [
    {"value": "appointmentscheduled", "timestamp": "2025-01-02T10:00:00.000Z", "sourceType": "CRM_UI",
     "sourceId": "userId:7001", "updatedByUserId": 7001},
    {"value": "qualifiedtobuy", "timestamp": "2025-01-09T10:00:00.000Z", "sourceType": "CRM_UI",
     "sourceId": "userId:7001", "updatedByUserId": 7001},
]


def test_every_deal_pipeline_is_listed_with_its_stages(hs: HubSpot) -> None:
    pipelines = hs.crm.pipelines.pipelines_api.get_all("deals").results
    assert [p.id for p in pipelines] == ["default", "75312468", "75312469"]
    default = pipelines[0]
    assert [s.id for s in default.stages][:2] == ["appointmentscheduled", "qualifiedtobuy"]
    enterprise = hs.crm.pipelines.pipelines_api.get_by_id("deals", "75312468")
    assert enterprise.label == "Enterprise Sales"
    assert all(s.id.isdigit() for s in enterprise.stages)
    assert [s.label for s in enterprise.stages] == [
        "Prospecting", "Discovery", "Solution Design", "Proposal", "Negotiation", "Closed Won", "Closed Lost",
    ]
    stages = hs.crm.pipelines.pipeline_stages_api.get_all("deals", "75312468").results
    assert [s.metadata for s in stages][2] == {"isClosed": "false", "probability": "0.4"}
    lost = hs.crm.pipelines.pipeline_stages_api.get_by_id("deals", "75312468", "128400107")
    assert lost.metadata == {"isClosed": "true", "probability": "0.0"}


def test_an_unknown_pipeline_or_stage_is_a_404_naming_it(hs: HubSpot) -> None:
    with pytest.raises(PipelineError) as missing:
        hs.crm.pipelines.pipelines_api.get_by_id("deals", "999")
    assert missing.value.status == 404 and "999" in missing.value.body
    with pytest.raises(PipelineError) as stage:
        hs.crm.pipelines.pipeline_stages_api.get_by_id("deals", "default", "128400101")
    assert stage.value.status == 404 and "128400101" in stage.value.body


def test_stage_changes_through_the_api_build_the_history_newest_first(hs: HubSpot) -> None:
    deals = hs.crm.deals.basic_api
    created = deals.create(DealInput(properties={
        "dealname": "Acme - Platform", "pipeline": "75312468", "dealstage": "128400101", "amount": "1000",
    }))
    assert created.properties["pipeline"] == "75312468"
    deals.update(created.id, SimplePublicObjectInput(properties={"dealstage": "128400102"}))
    deals.update(created.id, SimplePublicObjectInput(properties={"amount": "1200"}))  # not a stage change
    deals.update(created.id, SimplePublicObjectInput(properties={"dealstage": "128400103"}))
    one = deals.get_by_id(created.id, properties_with_history=["dealstage"])
    history = one.properties_with_history["dealstage"]
    assert [h.value for h in history] == ["128400103", "128400102", "128400101"]
    assert [h.timestamp for h in history] == sorted((h.timestamp for h in history), reverse=True)
    assert {h.source_type for h in history} == {"API"}
    listed = deals.get_page(properties_with_history=["dealstage", "no_such_property"])
    assert next(h.value for h in listed.results[0].properties_with_history["dealstage"]) == "128400103"
    assert "no_such_property" not in listed.results[0].properties_with_history
    batch = hs.crm.deals.batch_api.read(BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id=created.id)], properties=["dealname"], properties_with_history=["dealstage"],
    ))
    assert len(batch.results[0].properties_with_history["dealstage"]) == 3


def test_seeded_history_is_served_and_continued() -> None:
    stamp = "2025-01-09T10:00:00.000Z"
    deal = {"id": "9001", "properties": {"dealname": "Globex", "pipeline": "default", "dealstage": "qualifiedtobuy"},
            "createdAt": "2025-01-02T10:00:00.000Z", "updatedAt": stamp, "archived": False,
            "propertiesWithHistory": {"dealstage": SEEDED_HISTORY}}
    box = HubSpotSandbox(Seed(hubspot={"deals": [deal]}), ten_second_limit=100_000)
    server = box.start()
    try:
        deals = client(server).crm.deals.basic_api
        seeded = deals.get_by_id("9001", properties_with_history=["dealstage", "dealname"])
        history = seeded.properties_with_history["dealstage"]
        assert [(h.value, h.source_type, h.updated_by_user_id) for h in history] == [
            ("qualifiedtobuy", "CRM_UI", 7001), ("appointmentscheduled", "CRM_UI", 7001),
        ]
        assert [h.value for h in seeded.properties_with_history["dealname"]] == ["Globex"]
        deals.update("9001", SimplePublicObjectInput(properties={"dealstage": "closedwon"}))
        after = deals.get_by_id("9001", properties_with_history=["dealstage"]).properties_with_history["dealstage"]
        assert [h.value for h in after] == ["closedwon", "qualifiedtobuy", "appointmentscheduled"]
    finally:
        box.stop()
