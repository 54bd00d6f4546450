"""Governance rules files: SOP tables as boundary cases, approval matrices, config errors named."""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from connector.config.loader import validate_config
from connector.core.governance.approvals import approver_for, resolve_approver
from connector.core.governance.dispositions import (
    disposition_decision,
    disposition_overdue,
    nurture_track,
    recycle_candidates,
    recycle_due,
)
from connector.core.governance.rules import (
    ApprovalRules,
    DispositionRules,
    StageRules,
    criteria_fields,
)
from connector.core.models import RecordRef
from connector.core.rules import Rules

from .helpers import NOW

REPO = Path(__file__).resolve().parents[2]
REF = RecordRef(connection="salesforce", object="Lead", crm_id="00Q1")


@pytest.mark.parametrize(("percent", "approver"), [
    (0, "Sales Rep"), (10, "Sales Rep"), (10.5, "Sales Manager"), (11, "Sales Manager"), (20, "Sales Manager"),
    (20.01, "VP Sales"), (21, "VP Sales"), (30, "VP Sales"), (30.01, "CEO"), (31, "CEO"), (100, "CEO"),
])
def test_discount_matrix_every_row_edge(percent: float, approver: str) -> None:
    assert approver_for(ApprovalRules(), "discount", percent) == approver


@pytest.mark.parametrize(("budget", "approver"), [
    (0, "Marketing Manager"), (4999.99, "Marketing Manager"), (5000, "Director of Marketing"),
    (25000, "Director of Marketing"), (25000.5, "CMO"), (25001, "CMO"), (100000, "CMO"), (100000.01, "CEO"),
    (10**7, "CEO"),
])
def test_campaign_budget_matrix_every_row_edge(budget: float, approver: str) -> None:
    assert approver_for(ApprovalRules(), "campaign_budget", budget) == approver


def test_unknown_matrix_is_named() -> None:
    with pytest.raises(KeyError, match=re.escape("no approval matrix 'margin' in approvals.yaml (known: discount, campaign_budget)")):
        approver_for(ApprovalRules(), "margin", 5)


@given(st.floats(min_value=-10, max_value=200, allow_nan=False), st.floats(min_value=0, max_value=50, allow_nan=False),
       st.sampled_from(["discount", "campaign_budget"]))
def test_a_larger_value_never_needs_a_lower_approver(value: float, more: float, matrix: str) -> None:
    rules = ApprovalRules()
    scale = 1.0 if matrix == "discount" else 5000.0
    low, high = value * scale, (value + more) * scale
    assert rules.rank(approver_for(rules, matrix, high)) >= rules.rank(approver_for(rules, matrix, low))


def test_approvers_resolve_through_the_roster(rules: Rules) -> None:
    approvals = ApprovalRules()
    rep = "liam.walsh@northwind.example"
    assert resolve_approver(approvals, "Sales Rep", rep, rules.routing).self_approved
    assert resolve_approver(approvals, "Sales Manager", rep, rules.routing).email == "marcus.chen@northwind.example"
    assert resolve_approver(approvals, "Sales Manager", "sophie.laurent@northwind.example",
                            rules.routing).email == "priya.nair@northwind.example"
    assert resolve_approver(approvals, "VP Sales", rep, rules.routing).email == "dana.whitfield@northwind.example"
    nobody = resolve_approver(approvals, "Sales Manager", "dana.whitfield@northwind.example", rules.routing)
    assert nobody.email is None and "no active manager" in nobody.reason


def _matrix(rows: list[dict[str, object]], approvers: list[str] | None = None) -> dict[str, object]:
    names = approvers or ["A", "B", "C"]
    return {"approvers": {n: {"kind": "owner"} for n in names}, "matrices": {"m": {"measure": "x", "rows": rows}}}


@pytest.mark.parametrize(("rows", "loc", "text"), [
    ([{"max": 10, "approver": "A"}, {"min": 10, "approver": "B"}], ("matrices", "m", "rows", 1), "overlaps row 0"),
    ([{"max": 10, "approver": "B"}, {"min": 11, "approver": "A"}], ("matrices", "m", "rows", 1, "approver"),
     "'A' ranks below 'B'"),
    ([{"max": 10, "approver": "A"}, {"min": 11, "max": 20, "approver": "B"}], ("matrices", "m", "rows", 1),
     "must have no upper bound"),
    ([{"max": 10, "approver": "Z"}, {"above": 10, "approver": "B"}], ("matrices", "m", "rows", 0, "approver"),
     "'Z' is not an approver"),
])
def test_matrix_errors_name_the_row(rows: list[dict[str, object]], loc: tuple[object, ...], text: str) -> None:
    with pytest.raises(ValidationError) as info:
        ApprovalRules.model_validate(_matrix(rows))
    errors = info.value.errors()
    assert any(tuple(e["loc"]) == loc and text in e["msg"] for e in errors), errors


@pytest.mark.parametrize(("score", "track"), [
    (0, "Awareness"), (19, "Awareness"), (20, "Interested"), (39, "Interested"), (40, "Engaged"), (59, "Engaged"),
    (60, "Sales Ready"), (79, "Sales Ready"), (80, None), (100, None),
])
def test_nurture_band_edges(score: int, track: str | None) -> None:
    found = nurture_track(score, DispositionRules())
    assert (found.name if found else None) == track


def test_nurture_frequencies_are_the_sop_table() -> None:
    assert [(t.name, t.frequency) for t in DispositionRules().tracks] == [
        ("Sales Ready", "daily"), ("Engaged", "twice a week"), ("Interested", "weekly"), ("Awareness", "monthly")]


def test_no_response_recycles_after_90_days_never_to_the_same_owner() -> None:
    decision = disposition_decision(REF, "No Response", DispositionRules(), NOW, "liam.walsh@northwind.example")
    assert decision.action == "recycle" and decision.recycle_at == NOW + timedelta(days=90)
    assert not recycle_due(decision, NOW + timedelta(days=90) - timedelta(seconds=1))
    assert recycle_due(decision, NOW + timedelta(days=90))
    assert recycle_candidates(["Liam.Walsh@northwind.example", "emma.rossi@northwind.example"], decision) == (
        "emma.rossi@northwind.example",)


@pytest.mark.parametrize(("value", "action", "suppress"), [
    ("Qualified", "create_opportunity", False), ("Not Ready", "return_to_nurture", False),
    ("Bad Fit", "disqualify", False), ("Do Not Contact", "suppress", True),
])
def test_each_sop_disposition(value: str, action: str, suppress: bool) -> None:
    decision = disposition_decision(REF, value, DispositionRules(), NOW, "a@northwind.example")
    assert (decision.action, decision.suppress, decision.recycle_at) == (action, suppress, None)


def test_unknown_disposition_is_named() -> None:
    with pytest.raises(ValueError, match=re.escape("salesforce/Lead/00Q1: disposition 'Maybe' is not one of dispositions.yaml")):
        disposition_decision(REF, "Maybe", DispositionRules(), NOW, None)


def test_disposition_expected_within_24_hours() -> None:
    rules = DispositionRules()
    contacted = NOW - timedelta(hours=24)
    assert disposition_overdue(REF, contacted + timedelta(seconds=1), None, rules, NOW, "a@x.example") is None
    assert disposition_overdue(REF, contacted, "Bad Fit", rules, NOW, "a@x.example") is None
    finding = disposition_overdue(REF, contacted, None, rules, NOW, "a@x.example")
    assert finding is not None and finding.code == "disposition_missing" and finding.task is not None
    assert finding.task.assignee_email == "a@x.example" and "salesforce/Lead/00Q1" in finding.message


def test_disposition_with_unknown_action_is_named() -> None:
    with pytest.raises(ValidationError, match="action 'archive', which is not an action"):
        DispositionRules.model_validate({"dispositions": {"Gone": {"action": "archive"}}})


def test_criteria_fields_lists_every_field_the_rules_read() -> None:
    fields = criteria_fields(StageRules())
    assert {"discovery_call_scheduled", "mutual_evaluation_plan", "implementation_planned", "decision_date"} <= fields
    framework = StageRules.model_validate({"pipelines": {"sales": {"stages": [
        {"name": "A", "exit_criteria": [{"label": "BANT", "framework": "BANT"}]},
        {"name": "Won", "outcome": "won"}]}}})
    assert criteria_fields(framework) == {"budget", "authority", "need", "timeline"}


def test_shipped_files_are_the_sop_defaults() -> None:
    from connector.config.loader import load_config
    rules = load_config(REPO / "config", REPO / "mappings", env={}).rules
    assert rules.approvals == ApprovalRules()
    sop, shipped = StageRules().pipelines["sales"], rules.stages.pipelines["sales"]
    # The shipped file adds the portal's Enterprise pipeline ids, the Renewals pipeline and one enforced gate.
    assert [(s.name, s.outcome, s.expected_days, s.exit_criteria) for s in shipped.stages] == [
        (s.name, s.outcome, s.expected_days, s.exit_criteria) for s in sop.stages]
    assert all(set(a.ids) <= set(b.ids) for a, b in zip(sop.stages, shipped.stages, strict=True))
    assert [s.name for s in shipped.stages if s.gate == "enforce"] == ["Proposal"]
    assert (rules.stages.policies, rules.stages.hygiene, rules.stages.frameworks) == (
        StageRules().policies, StageRules().hygiene, StageRules().frameworks)
    assert rules.dispositions == DispositionRules()
    assert [s.name for s in rules.stages.pipelines["sales"].stages] == [
        "Prospecting", "Discovery", "Solution Design", "Proposal", "Negotiation", "Closed Won", "Closed Lost"]
    assert [(s.expected_days.min, s.expected_days.max) for s in rules.stages.pipelines["sales"].stages
            if s.expected_days] == [(0, 7), (7, 14), (7, 14), (0, 7), (7, 14)]


@pytest.fixture()
def config_copy(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "config", tmp_path / "config", symlinks=False)
    return tmp_path / "config"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_validate_names_file_key_and_value_of_cross_file_problems(config_copy: Path) -> None:
    rules_dir = config_copy / "rules"
    _edit(rules_dir / "approvals.yaml", "VP Sales: {kind: role, role: director}", "VP Sales: {kind: role, role: vp_sales}")
    _edit(rules_dir / "approvals.yaml", "CEO: {kind: member, email: dana.whitfield@northwind.example}",
          "CEO: {kind: member, email: avery@northwind.example}")
    _edit(rules_dir / "approvals.yaml", "required_before: Closed Won", "required_before: Closed-Won")
    _edit(rules_dir / "handoffs.yaml", "cs_role: csm", "cs_role: customer_success")
    problems = validate_config(config_copy, REPO / "mappings", env={})
    found = {(Path(p.file).name, p.key_path, p.value) for p in problems}
    assert found == {
        ("approvals.yaml", "approvers.VP Sales.role", "vp_sales"),
        ("approvals.yaml", "approvers.CEO.email", "avery@northwind.example"),
        ("approvals.yaml", "matrices.discount.required_before", "Closed-Won"),
        ("handoffs.yaml", "closed_won.cs_role", "customer_success"),
    }, problems
    assert all(p.line for p in problems)
    by_key = {p.key_path: p.message for p in problems}
    assert "no team member of routing.yaml has role 'vp_sales'" in by_key["approvers.VP Sales.role"]
    assert "no stage of any pipeline" in by_key["matrices.discount.required_before"]


def test_validate_names_the_sdr_to_ae_roles_group_and_checklist_gaps(config_copy: Path, tmp_path: Path) -> None:
    rules_dir = config_copy / "rules"
    _edit(rules_dir / "handoffs.yaml", "ae_roles: [senior_rep, sales_rep]", "ae_roles: [senior_rep, account_exec]")
    _edit(rules_dir / "handoffs.yaml", "ae_group: sales_reps", "ae_group: aes")
    problems = validate_config(config_copy, REPO / "mappings", env={})
    assert {(Path(p.file).name, p.key_path, p.value) for p in problems} == {
        ("handoffs.yaml", "sdr_to_ae.ae_roles[1]", "account_exec"), ("handoffs.yaml", "sdr_to_ae.ae_group", "aes")}
    assert "not a group of routing.yaml (known: sales_reps, sdr_team, senior_reps)" in problems[-1].message
    _edit(rules_dir / "handoffs.yaml", "ae_roles: [senior_rep, account_exec]", "ae_roles: [senior_rep, sales_rep]")
    _edit(rules_dir / "handoffs.yaml", "ae_group: aes", "ae_group: sales_reps")
    # rules that load: each checklist field must be a person field, mapped on every converted lead object
    _edit(rules_dir / "handoffs.yaml", "checklist: [meeting_outcome, handoff_notes, next_step]",
          "checklist: [meeting_outcome, handoff_note, next_step]")
    mappings = tmp_path / "mappings"
    shutil.copytree(REPO / "mappings", mappings)
    _edit(mappings / "hubspot.yaml", "      - {canonical: timeline, crm: timeline, direction: read, transform: [strip]}\n", "")
    problems = validate_config(config_copy, mappings, env={})
    found = {(Path(p.file).name, p.key_path, p.value) for p in problems}
    assert found == {
        ("handoffs.yaml", "sdr_to_ae.checklist[1]", "handoff_note"),
        ("handoffs.yaml", "sdr_to_ae.framework", "timeline"),
    }, problems
    by_value = {p.value: p.message for p in problems}
    assert "did you mean 'handoff_notes'?" in by_value["handoff_note"]
    assert "hubspot.yaml object contacts (connection hubspot)" in by_value["timeline"]
    assert "salesforce" not in by_value["timeline"]
    assert all(p.line for p in problems)


def test_validate_names_an_unknown_disposition_action(config_copy: Path) -> None:
    _edit(config_copy / "rules" / "dispositions.yaml", "{action: disqualify,", "{action: dq,")
    problems = validate_config(config_copy, REPO / "mappings", env={})
    assert [(Path(p.file).name, p.key_path, p.value, p.line) for p in problems] == [
        ("dispositions.yaml", "dispositions.Bad Fit.action", "dq", 22)]
    assert "known: create_opportunity, return_to_nurture, disqualify, recycle, suppress" in problems[0].message


def test_a_configuration_without_the_governance_files_still_loads(config_copy: Path) -> None:
    for stem in ("stages", "approvals", "dispositions", "handoffs"):
        (config_copy / "rules" / f"{stem}.yaml").unlink()
    assert validate_config(config_copy, REPO / "mappings", env={}) == []


def test_stage_rule_errors_are_named() -> None:
    with pytest.raises(ValidationError) as info:
        StageRules.model_validate({"pipelines": {"sales": {"stages": [
            {"name": "Won", "outcome": "won"}, {"name": "A"}]}}})
    messages = {tuple(e["loc"]): e["msg"] for e in info.value.errors()}
    assert "open stage 'A' comes after closed stage 'Won'" in messages[("pipelines", "sales", "stages", 1, "outcome")]
    with pytest.raises(ValidationError) as info:
        StageRules.model_validate({"default_pipeline": "nope", "pipelines": {"sales": {"stages": [
            {"name": "A", "exit_criteria": [{"label": "x", "framework": "SPICED"}]}, {"name": "Won", "outcome": "won"}]}}})
    messages = {tuple(e["loc"]): e["msg"] for e in info.value.errors()}
    assert "'nope' is not a pipeline" in messages[("default_pipeline",)]
    assert "'SPICED' is not a framework" in messages[("pipelines", "sales", "stages", 0, "exit_criteria", 0, "framework")]


def test_governance_does_not_change_the_rules_version(rules: Rules) -> None:
    changed = rules.model_copy(update={"approvals": ApprovalRules(task_due_days=5)})
    assert changed.version == rules.version
