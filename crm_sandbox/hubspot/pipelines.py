"""The portal's deal pipelines and their stages (the ``pipeline`` and ``dealstage`` options).

Shapes follow HubSpot's CRM v3 pipelines reference (``GET /crm/v3/pipelines/{objectType}``):
a pipeline has ``id``, ``label``, ``displayOrder``, ``stages``, ``createdAt``, ``updatedAt``
and ``archived``; a deal stage has ``id``, ``label``, ``displayOrder``, ``metadata``
(``isClosed`` and ``probability``, both strings, as the API sends them), ``createdAt``,
``updatedAt``, ``archived`` and ``writePermissions``. Every account has the ``default``
pipeline ("Sales Pipeline") with HubSpot's standard stage ids (``appointmentscheduled`` ...
``closedlost``); pipelines an account adds get numeric-string ids, and so do their stages
(HubSpot pipelines guide: "Every account initially contains a default pipeline with the
pipelineId 'default'"; stage ids of added pipelines are generated numbers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CREATED_AT = "2024-01-08T09:00:00.000Z"
ADDED_AT = "2024-02-12T15:30:00.000Z"


@dataclass(frozen=True)
class Stage:
    """One deal stage: id, label, win probability (0..1) and whether it closes the deal."""

    id: str
    label: str
    probability: float
    closed: bool


@dataclass(frozen=True)
class Pipeline:
    """One deal pipeline: id, label, display order, creation time and stages in order."""

    id: str
    label: str
    display_order: int
    created_at: str
    stages: tuple[Stage, ...]


DEFAULT_PIPELINE = Pipeline("default", "Sales Pipeline", 0, CREATED_AT, (
    Stage("appointmentscheduled", "Appointment Scheduled", 0.2, False),
    Stage("qualifiedtobuy", "Qualified To Buy", 0.4, False),
    Stage("presentationscheduled", "Presentation Scheduled", 0.6, False),
    Stage("decisionmakerboughtin", "Decision Maker Bought-In", 0.8, False),
    Stage("contractsent", "Contract Sent", 0.9, False),
    Stage("closedwon", "Closed Won", 1.0, True),
    Stage("closedlost", "Closed Lost", 0.0, True),
))
#: A pipeline the RevOps team added with the SOP's stage names (seed 002 "Sales Stages & Exit Criteria").
ENTERPRISE_PIPELINE = Pipeline("75312468", "Enterprise Sales", 1, ADDED_AT, (
    Stage("128400101", "Prospecting", 0.1, False),
    Stage("128400102", "Discovery", 0.2, False),
    Stage("128400103", "Solution Design", 0.4, False),
    Stage("128400104", "Proposal", 0.6, False),
    Stage("128400105", "Negotiation", 0.8, False),
    Stage("128400106", "Closed Won", 1.0, True),
    Stage("128400107", "Closed Lost", 0.0, True),
))
RENEWALS_PIPELINE = Pipeline("75312469", "Renewals", 2, ADDED_AT, (
    Stage("128400201", "Renewal Due", 0.5, False),
    Stage("128400202", "Renewal Quoted", 0.7, False),
    Stage("128400203", "Renewed", 1.0, True),
    Stage("128400204", "Churned", 0.0, True),
))
DEAL_PIPELINES: tuple[Pipeline, ...] = (DEFAULT_PIPELINE, ENTERPRISE_PIPELINE, RENEWALS_PIPELINE)
_BY_ID = {p.id: p for p in DEAL_PIPELINES}
_STAGE_PIPELINE = {s.id: p for p in DEAL_PIPELINES for s in p.stages}


def pipeline(pipeline_id: str) -> Pipeline | None:
    """The deal pipeline with this id, or None."""
    return _BY_ID.get(pipeline_id)


def pipeline_of_stage(stage_id: str) -> Pipeline | None:
    """The pipeline a deal stage id belongs to, or None for an unknown stage."""
    return _STAGE_PIPELINE.get(stage_id)


def stage_options() -> list[tuple[str, str]]:
    """``dealstage`` options, (label, value), of every pipeline in order."""
    return [(s.label, s.id) for p in DEAL_PIPELINES for s in p.stages]


def pipeline_options() -> list[tuple[str, str]]:
    """``pipeline`` options, (label, value)."""
    return [(p.label, p.id) for p in DEAL_PIPELINES]


def _number(value: float) -> str:
    return f"{value:.1f}"


def stage_json(stage: Stage, order: int, created_at: str) -> dict[str, Any]:
    """A stage in the pipelines API's shape."""
    return {
        "label": stage.label,
        "displayOrder": order,
        "metadata": {"isClosed": str(stage.closed).lower(), "probability": _number(stage.probability)},
        "id": stage.id,
        "createdAt": created_at,
        "updatedAt": created_at,
        "archived": False,
        "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
    }


def pipeline_json(item: Pipeline) -> dict[str, Any]:
    """A pipeline in the pipelines API's shape."""
    return {
        "label": item.label,
        "displayOrder": item.display_order,
        "id": item.id,
        "stages": [stage_json(s, order, item.created_at) for order, s in enumerate(item.stages)],
        "createdAt": item.created_at,
        "updatedAt": item.created_at,
        "archived": False,
    }
