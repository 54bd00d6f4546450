"""Seeded deals, stage history, discounts, handoffs and dispositions follow the SOP tables, and the
ground truth says exactly what the records show.

Everything the truth claims is recomputed here from the records alone, with the SOP tables as
Relay ships them (config/rules/stages.yaml exit criteria and durations, approvals.yaml's discount
matrix) and field tables written independently of the generator. The last tests read the seeded
history back through the official SDKs from running sandboxes.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml
from hubspot import HubSpot
from hubspot.crm.contacts import BatchReadInputSimplePublicObjectId as ContactBatch
from hubspot.crm.contacts import SimplePublicObjectId as ContactId
from hubspot.crm.deals import BatchReadInputSimplePublicObjectId, SimplePublicObjectId
from simple_salesforce import Salesforce

from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.salesforce.transport import sandbox_session
from crm_sandbox.seed import SeedData, generate
from crm_sandbox.seed import opportunities as opp
from crm_sandbox.seed._model import DealTruth

ANCHOR = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
RULES = Path(__file__).resolve().parents[2] / "config" / "rules"
SOP = ("Prospecting", "Discovery", "Solution Design", "Proposal", "Negotiation", "Closed Won", "Closed Lost")
OPEN = SOP[:5]
RENEWALS = "75312469"
# Seed 002: probability and forecast category per stage (OpportunityHistory stores API names).
PROBABILITY = {"Prospecting": 10, "Discovery": 20, "Solution Design": 40, "Proposal": 60, "Negotiation": 80,
               "Closed Won": 100, "Closed Lost": 0}
FORECAST_API = {"Prospecting": "Pipeline", "Discovery": "Pipeline", "Solution Design": "Pipeline",
                "Proposal": "BestCase", "Negotiation": "Forecast", "Closed Won": "Closed", "Closed Lost": "Omitted"}
# HubSpot stage ids by SOP position: the default pipeline and the portal's "Enterprise Sales".
HS_STAGE_IDS = {
    "default": ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
                "contractsent", "closedwon", "closedlost"),
    "75312468": tuple(str(n) for n in range(128400101, 128400108)),
}
HS_RENEWAL_STAGES = {"128400201": "Renewal Due", "128400202": "Renewal Quoted", "128400203": "Renewed",
                     "128400204": "Churned"}
# canonical name -> (Salesforce field, HubSpot property), written from the brief and the SOP.
HANDOFF_FORM = {
    "handoff_csm": ("Handoff_CSM__c", "handoff_csm"), "contract_value": ("Amount", "amount"),
    "contract_term": ("Contract_Term_Months__c", "contract_term_months"),
    "go_live_date": ("Go_Live_Date__c", "go_live_date"), "key_stakeholders": ("Key_Stakeholders__c", "key_stakeholders"),
    "success_criteria": ("Success_Criteria__c", "success_criteria"), "risk_factors": ("Risk_Factors__c", "risk_factors"),
}
CARRY_OVER = {
    "payment_state": ("Payment_State__c", "payment_state"), "contract_state": ("Contract_State__c", "contract_state"),
    "kickoff_date": ("Kickoff_Date__c", "kickoff_date"), "onboarding_owner": ("Onboarding_Owner__c", "onboarding_owner"),
    "launch_blockers": ("Launch_Blockers__c", "launch_blockers"),
}
CHECKLIST = {
    "meeting_outcome": ("Meeting_Outcome__c", "meeting_outcome"), "handoff_notes": ("Handoff_Notes__c", "handoff_notes"),
    "next_step": ("Next_Step__c", "next_step"), "budget": ("Budget__c", "budget"), "authority": ("Authority__c", "authority"),
    "need": ("Need__c", "need"), "timeline": ("Timeline__c", "timeline"),
}
DISPOSITIONS = {"Qualified", "Not Ready", "Bad Fit", "No Response", "Do Not Contact"}
EDGES = {0.0, 10.0, 10.5, 11.0, 20.0, 20.5, 21.0, 30.0, 30.5, 31.0, 45.0}


def _criterion_field(name: str, crm: str) -> str:
    """The field of an exit criterion: Salesforce ``Name_In_Title_Case__c``, HubSpot the name itself."""
    if crm == "hubspot":
        return name
    special = {"bant_qualified": "BANT_Qualified__c", "roi_validated": "ROI_Validated__c"}
    return special.get(name) or "_".join(part.capitalize() for part in name.split("_")) + "__c"


@pytest.fixture(scope="module")
def stage_rules() -> dict[str, Any]:
    rules = yaml.safe_load((RULES / "stages.yaml").read_text())
    stages = rules["pipelines"][rules["default_pipeline"]]["stages"]
    exits = {s["name"]: [c["field"] for c in s.get("exit_criteria", [])] for s in stages if "exit_criteria" in s}
    days = {s["name"]: (s["expected_days"]["min"], s["expected_days"]["max"]) for s in stages if "expected_days" in s}
    return {"exit": exits, "days": days, "order": [s["name"] for s in stages]}


@pytest.fixture(scope="module")
def discount_rows() -> list[dict[str, Any]]:
    rules = yaml.safe_load((RULES / "approvals.yaml").read_text())
    return list(rules["matrices"]["discount"]["rows"])


def approver(rows: list[dict[str, Any]], percent: float | None) -> str | None:
    """approvals.yaml's approver for a discount (a value between two rows goes to the stricter one)."""
    if percent is None:
        return None
    for row in rows:  # lowest values first; the earlier rows did not cover the value
        below_row = "min" in row and percent < row["min"]  # between this row and the one before
        within = ("max" in row and percent <= row["max"]) or ("above" in row and percent > row["above"])
        if below_row or within:
            return None if row["approver"] == "Sales Rep" else str(row["approver"])
    raise AssertionError(f"no row of approvals.yaml covers {percent}")


def _empty(value: Any) -> bool:
    return value is None or value is False or value in ("", "false")


def _sf_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture(scope="module")
def data() -> SeedData:
    return generate(seed=42, leads=600, anchor=ANCHOR)


@pytest.fixture(scope="module")
def big() -> SeedData:
    return generate(seed=7, leads=5000, anchor=ANCHOR)


def deals_of(data: SeedData) -> Iterator[tuple[tuple[str, str, str], dict[str, Any], str, DealTruth]]:
    """(key, fields, crm, truth) of every opportunity and deal."""
    for record in data.salesforce["Opportunity"]:
        key = ("salesforce", "Opportunity", record["Id"])
        yield key, record, "salesforce", data.truth.deals[key]
    for deal in data.hubspot["deals"]:
        key = ("hubspot", "deals", deal["id"])
        yield key, deal["properties"], "hubspot", data.truth.deals[key]


def hs_stage_name(pipeline: str, stage_id: str) -> str:
    if pipeline == RENEWALS:
        return HS_RENEWAL_STAGES[stage_id]
    return SOP[HS_STAGE_IDS[pipeline].index(stage_id)]


# ------------------------------------------------------------------------------- history
def test_every_opportunity_has_its_stage_history(data: SeedData) -> None:
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in data.salesforce["OpportunityHistory"]:
        rows[row["OpportunityId"]].append(row)
    assert set(rows) == {o["Id"] for o in data.salesforce["Opportunity"]}
    for record in data.salesforce["Opportunity"]:
        history = sorted(rows[record["Id"]], key=lambda r: r["CreatedDate"])
        truth = data.truth.deals[("salesforce", "Opportunity", record["Id"])]
        assert [(r["StageName"], _sf_time(r["CreatedDate"])) for r in history] == truth.path
        assert history[0]["CreatedDate"] == record["CreatedDate"]  # created = the first entry
        assert truth.pipeline is None
        assert history[-1]["StageName"] == record["StageName"] == truth.stage == truth.stage_value
        assert (history[-1]["Amount"], history[-1]["CloseDate"]) == (record["Amount"], record["CloseDate"])
        last_change = history[-1]["CreatedDate"] if len(history) > 1 else None
        assert record["LastStageChangeDate"] == last_change
        assert record["LastModifiedDate"] >= history[-1]["CreatedDate"]
        previous: dict[str, Any] | None = None
        for row in history:
            assert row["CreatedById"] == record["OwnerId"] and row["SystemModstamp"] == row["CreatedDate"]
            assert row["Probability"] == PROBABILITY[row["StageName"]]
            assert row["ForecastCategory"] == FORECAST_API[row["StageName"]]
            assert row["ExpectedRevenue"] == round(row["Amount"] * row["Probability"] / 100, 2)
            assert row["PrevAmount"] == (previous["Amount"] if previous else None)
            assert row["PrevCloseDate"] == (previous["CloseDate"] if previous else None)
            assert row["Id"].startswith("008")
            previous = row


def test_every_deal_has_dealstage_amount_and_closedate_history(data: SeedData) -> None:
    user_of = {o["id"]: o["userId"] for o in data.hubspot_owners}
    pipelines: Counter[str] = Counter()
    for deal in data.hubspot["deals"]:
        props = deal["properties"]
        truth = data.truth.deals[("hubspot", "deals", deal["id"])]
        pipeline = props["pipeline"]
        pipelines[pipeline] += 1
        assert truth.pipeline == pipeline and truth.stage_value == props["dealstage"]
        user = user_of[props["hubspot_owner_id"]]
        history = deal["propertiesWithHistory"]
        assert set(history) == {"dealstage", "amount", "closedate"}
        for name, entries in history.items():
            stamps = [e["timestamp"] for e in entries]
            assert stamps == sorted(stamps, reverse=True) and len(set(stamps)) == len(stamps), (deal["id"], name)
            assert entries[0]["value"] == props[name]  # newest first
            assert entries[-1]["timestamp"] == deal["createdAt"] == props["createdate"]
            for entry in entries:
                assert entry == {"value": entry["value"], "timestamp": entry["timestamp"], "sourceType": "CRM_UI",
                                 "sourceId": f"userId:{user}", "updatedByUserId": user}
            for newer, older in pairwise(entries):
                assert newer["value"] != older["value"]  # one entry per change
        path = [(hs_stage_name(pipeline, e["value"]), datetime.fromisoformat(e["timestamp"]))
                for e in reversed(history["dealstage"])]
        assert path == truth.path
        assert truth.stage == hs_stage_name(pipeline, props["dealstage"])
        assert deal["updatedAt"] >= history["dealstage"][0]["timestamp"]
    assert set(pipelines) == {"default", "75312468", RENEWALS}


def test_days_per_stage_follow_the_sop_durations(data: SeedData, big: SeedData, stage_rules: dict[str, Any]) -> None:
    days = stage_rules["days"]
    assert days == {"Prospecting": (0, 7), "Discovery": (7, 14), "Solution Design": (7, 14), "Proposal": (0, 7),
                    "Negotiation": (7, 14)}
    for seed_data in (data, big):
        for key, _, _, truth in deals_of(seed_data):
            if truth.pipeline == RENEWALS:
                assert not truth.stale
                continue
            for (stage, entered), (_, left) in pairwise(truth.path):
                if stage in days:  # every completed stage took as long as the SOP says
                    low, high = days[stage]
                    assert low <= (left - entered) / timedelta(days=1) <= high, (key, stage)
            in_stage = (ANCHOR - truth.stage_entered_at) // timedelta(days=1)
            assert truth.days_in_stage == in_stage
            if truth.stage in OPEN:
                high = days[truth.stage][1]
                assert truth.stale == (in_stage > high), key
                # far from the line: a run a day after the anchor sees the same
                assert in_stage >= high + 2 if truth.stale else in_stage <= high - 1, key
            else:
                assert not truth.stale


def test_skips_and_reopens_are_what_the_path_shows(data: SeedData, big: SeedData) -> None:
    for seed_data in (data, big):
        for key, _, _, truth in deals_of(seed_data):
            stages = [stage for stage, _ in truth.path]
            skipped, reopened = [], False
            for before, after in pairwise(stages):
                if before not in OPEN and after in OPEN:
                    reopened = True
                elif before in OPEN and after != "Closed Lost" and after in SOP:
                    skipped += list(SOP[SOP.index(before) + 1:SOP.index(after)])
            assert truth.skipped == skipped, key
            assert truth.reopened == reopened, key
            if reopened:
                assert stages[-3:] == ["Negotiation", "Closed Lost", "Negotiation"]
            if truth.stage in SOP:
                assert stages[0] == "Prospecting"  # every SOP deal starts at the first stage


# ------------------------------------------------------------------------------- gates
def test_gate_misses_are_the_passed_stages_missing_criteria(data: SeedData, big: SeedData,
                                                            stage_rules: dict[str, Any]) -> None:
    exits, order = stage_rules["exit"], stage_rules["order"]
    assert list(exits) == list(OPEN)
    for seed_data in (data, big):
        for key, fields, crm, truth in deals_of(seed_data):
            expected: dict[str, list[str]] = {}
            if truth.pipeline != RENEWALS and truth.stage != "Closed Lost":
                for stage in order[:order.index(truth.stage)]:
                    missing = [c for c in exits[stage] if _empty(fields[_criterion_field(c, crm)])]
                    if missing:
                        expected[stage] = missing
            assert truth.gate_misses == expected, key
            for stage in truth.skipped:  # a skipped stage's checklist was skipped too
                assert stage in truth.gate_misses, key


def test_stage_violations_list_the_gate_misses_the_approval_and_the_form(data: SeedData) -> None:
    for key, _, _, truth in deals_of(data):
        expected = [c for misses in truth.gate_misses.values() for c in misses]
        if truth.stage == "Closed Won" and truth.pipeline != RENEWALS:
            expected += ["discount_approval"] if truth.approval and not truth.approved else []
            expected += truth.form_missing
        assert data.truth.stage_violations.get(key, []) == expected, key


# ---------------------------------------------------------------------------- approvals
def test_discounts_and_approvals_follow_the_matrix(data: SeedData, big: SeedData, discount_rows: list[dict[str, Any]]) -> None:
    for seed_data in (data, big):
        for key, fields, crm, truth in deals_of(seed_data):
            percent_field, approver_field = (("Discount_Percent__c", "Discount_Approved_By__c") if crm == "salesforce"
                                             else ("discount_percent", "discount_approved_by"))
            raw = fields[percent_field]
            percent = None if raw in (None, "") else float(raw)
            assert truth.discount == percent, key
            if percent is not None:
                assert truth.stage in ("Negotiation", "Closed Won"), key  # discounts are negotiated
            expected = approver(discount_rows, percent) if truth.stage != "Closed Lost" else None
            assert truth.approval == expected, key
            assert truth.approved == (not _empty(fields[approver_field])), key
            if truth.approved:
                assert expected is not None and fields[approver_field].endswith(f"({expected})"), key


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_every_row_and_edge_of_the_discount_matrix_is_seeded(data: SeedData, crm: str,
                                                              discount_rows: list[dict[str, Any]]) -> None:
    deals = [t for k, _, c, t in deals_of(data) if c == crm and t.discount is not None]
    assert {t.discount for t in deals} >= EDGES
    for title in ("Sales Manager", "VP Sales", "CEO"):
        decided = {t.approved for t in deals if t.approval == title}
        assert decided == {True, False}, title  # approved and still waiting, in every row
    assert {approver(discount_rows, t.discount) for t in deals} == {None, "Sales Manager", "VP Sales", "CEO"}
    # the first four Negotiation / Closed Won deals of a CRM already hit every row
    small = [t for k, _, c, t in deals_of(generate(3, 0, ANCHOR)) if c == crm and t.discount is not None]
    assert {approver(discount_rows, t.discount) for t in small} == {None, "Sales Manager", "VP Sales", "CEO"}


# ---------------------------------------------------------------------------- handoffs
def test_closed_won_form_carry_over_loss_reason_and_next_step(data: SeedData, big: SeedData) -> None:
    for seed_data in (data, big):
        for key, fields, crm, truth in deals_of(seed_data):
            column = 0 if crm == "salesforce" else 1
            sop_won = truth.stage == "Closed Won"
            form = [n for n, names in HANDOFF_FORM.items() if _empty(fields[names[column]])] if sop_won else []
            carry = [n for n, names in CARRY_OVER.items() if _empty(fields[names[column]])] if sop_won else []
            assert (truth.form_missing, truth.carry_over_missing) == (form, carry), key
            if sop_won and not form:
                assert fields[HANDOFF_FORM["risk_factors"][column]]  # "None identified" counts as filled
            reason = fields["Loss_Reason__c" if crm == "salesforce" else "closed_lost_reason"]
            assert truth.loss_reason_missing == (truth.stage in ("Closed Lost", "Churned") and _empty(reason)), key
            step = fields["NextStep" if crm == "salesforce" else "hs_next_step"]
            is_open = truth.stage in OPEN or truth.stage in ("Renewal Due", "Renewal Quoted")
            assert truth.next_step_missing == (is_open and _empty(step)), key
    won = [t for *_, t in deals_of(big) if t.stage == "Closed Won"]
    assert "None identified" in {f["Risk_Factors__c"] for f in big.salesforce["Opportunity"]}
    assert 0.15 <= sum(bool(t.form_missing) for t in won) / len(won) <= 0.35
    assert sum(not t.carry_over_missing for t in won) / len(won) >= 0.7  # filled for most


def test_late_quarter_changes_are_read_from_the_history(data: SeedData) -> None:
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in data.salesforce["OpportunityHistory"]:
        rows[row["OpportunityId"]].append(row)
    found_any = False
    for record in data.salesforce["Opportunity"]:
        history = sorted(rows[record["Id"]], key=lambda r: r["CreatedDate"])
        expected = []
        for before, after in pairwise(history):
            at = _sf_time(after["CreatedDate"])
            day = at.date()
            end = date(day.year + (day.month > 9), (day.month - 1) // 3 * 3 + 4 if day.month <= 9 else 1, 1)
            if (end - day).days - 1 < 14:
                expected += [("amount", at)] if after["Amount"] != before["Amount"] else []
                expected += [("close_date", at)] if after["CloseDate"] != before["CloseDate"] else []
        assert data.truth.deals[("salesforce", "Opportunity", record["Id"])].late_quarter == expected
        found_any |= bool(expected)
    assert found_any


# ------------------------------------------------------------------------------ shares
def test_the_documented_shares_hold(big: SeedData) -> None:
    for crm in ("salesforce", "hubspot"):
        drawn = [t for k, _, c, t in deals_of(big) if c == crm and t.pipeline != RENEWALS][30:]  # after the scheduled ones
        open_deals = [t for t in drawn if t.stage in OPEN]
        assert abs(sum(t.stale for t in open_deals) / len(open_deals) - opp.STALE_RATE) <= 0.05, crm
        lost = [t for t in drawn if t.stage == "Closed Lost"]
        assert abs(sum(t.loss_reason_missing for t in lost) / len(lost) - opp.LOSS_REASON_MISSING_RATE) <= 0.1, crm
        assert abs(sum(t.next_step_missing for t in open_deals) / len(open_deals) - opp.NEXT_STEP_MISSING_RATE) <= 0.05
        later = [t for t in drawn if t.stage in SOP[2:6]]
        assert abs(sum(bool(t.skipped) for t in later) / len(later) - opp.SKIP_RATE) <= 0.05, crm
        assert any(t.reopened for t in drawn), crm
        lost_from = Counter(t.path[-2][0] for t in lost)
        assert set(lost_from) == set(OPEN), crm  # lost from every stage


@pytest.mark.parametrize("leads", [0, 150])
def test_the_first_deals_show_every_case_at_any_size(leads: int) -> None:
    small = generate(5, leads, ANCHOR)
    for crm in ("salesforce", "hubspot"):
        deals = [t for k, _, c, t in deals_of(small) if c == crm]
        assert any(t.stale for t in deals) and any(t.skipped for t in deals) and any(t.reopened for t in deals)
        assert any(t.gate_misses and not t.skipped for t in deals)
        assert any(t.stage == "Negotiation" and "Proposal" in t.gate_misses for t in deals)  # past Proposal without it
        assert any(t.form_missing for t in deals) and any(t.stage == "Closed Won" and not t.form_missing for t in deals)
        assert any(t.loss_reason_missing for t in deals) and any(t.next_step_missing for t in deals)
        assert len({t.path[-2][0] for t in deals if t.stage == "Closed Lost"}) >= 2
    pipelines = {d["properties"]["pipeline"] for d in small.hubspot["deals"]}
    assert pipelines == ({"default", "75312468", RENEWALS} if leads else {"default", "75312468"})


# -------------------------------------------------------------------------- dispositions
def people_of(data: SeedData) -> Iterator[tuple[tuple[str, str, str], dict[str, Any], dict[str, Any]]]:
    """(key, fields, record) of every lead and contact."""
    for obj in ("Lead", "Contact"):
        for record in data.salesforce[obj]:
            yield ("salesforce", obj, record["Id"]), record, record
    for record in data.hubspot["contacts"]:
        yield ("hubspot", "contacts", record["id"]), record["properties"], record


def test_dispositions_are_what_the_records_show(data: SeedData, big: SeedData) -> None:
    for seed_data in (data, big):
        queue = next(u["Id"] for u in seed_data.salesforce["User"] if u["Email"] == "lead.queue@northwind.example")
        seen = set()
        for key, fields, record in people_of(seed_data):
            column = 0 if key[0] == "salesforce" else 1
            value = fields["Disposition__c" if column == 0 else "disposition"]
            stamp = fields["Disposition_Date__c" if column == 0 else "disposition_date"]
            truth = seed_data.truth.dispositions.get(key)
            checklist = {n: fields[names[column]] for n, names in CHECKLIST.items()}
            if value is None:
                assert truth is None and stamp is None and all(v is None for v in checklist.values())
                continue
            seen.add(key)
            assert truth is not None and truth.disposition == value and value in DISPOSITIONS
            # the rep's last edit: nothing else about the record moved
            assert stamp == (record["LastModifiedDate"] if column == 0 else record["updatedAt"])
            assert truth.set_at == datetime.fromisoformat(stamp) < ANCHOR
            assert truth.set_at > datetime.fromisoformat(record["CreatedDate"] if column == 0 else record["createdAt"])
            if column == 0:
                assert record["OwnerId"] != queue  # owned
            else:
                assert fields["hubspot_owner_id"]
            age = ANCHOR - truth.set_at
            assert truth.recycle_due == (value == "No Response" and age > timedelta(days=90))
            if value == "No Response":
                assert abs(age - timedelta(days=90)) >= timedelta(days=3)  # clear of the 90-day line
            if value == "Qualified":
                assert key[1] in ("Lead", "contacts")  # a contact is converted already
                assert key[1] != "Lead" or record["IsConverted"] is False
                assert truth.checklist_missing == [n for n, v in checklist.items() if v is None]
            else:
                assert truth.checklist_missing == [] and all(v is None for v in checklist.values())
        assert seen == set(seed_data.truth.dispositions)


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_every_disposition_is_seeded_in_both_crms(data: SeedData, crm: str) -> None:
    mine = {k: t for k, t in data.truth.dispositions.items() if k[0] == crm}
    assert {t.disposition for t in mine.values()} == DISPOSITIONS
    recycle = {t.recycle_due for t in mine.values() if t.disposition == "No Response"}
    assert recycle == {True, False}  # due for recycling, and not yet
    qualified = [t for t in mine.values() if t.disposition == "Qualified"]
    assert {bool(t.checklist_missing) for t in qualified} == {True, False}
    if crm == "salesforce":
        assert {k[1] for k in mine} == {"Lead", "Contact"}


def test_truth_serialises_deals_and_dispositions(data: SeedData) -> None:
    import json

    truth = json.loads(data.truth.to_json())
    key, deal = next((k, t) for k, t in data.truth.deals.items() if t.late_quarter and t.gate_misses)
    written = truth["deals"]["/".join(key)]
    assert written["path"][0] == {"stage": deal.path[0][0], "at": deal.path[0][1].isoformat(timespec="milliseconds")}
    assert written["gate_misses"] == deal.gate_misses and written["approval"] == deal.approval
    assert written["late_quarter"][0]["field"] == deal.late_quarter[0][0]
    assert datetime.fromisoformat(written["late_quarter"][0]["at"]) == deal.late_quarter[0][1]
    person, disposition = next(iter(data.truth.dispositions.items()))
    assert truth["dispositions"]["/".join(person)]["disposition"] == disposition.disposition


# ------------------------------------------------------------------ through the SDKs
@pytest.fixture(scope="module")
def served() -> Iterator[tuple[SeedData, Salesforce, HubSpot]]:
    seed_data = generate(seed=7, leads=150, anchor=ANCHOR)
    salesforce = SalesforceSandbox(seed_data)
    hubspot = HubSpotSandbox(seed_data, ten_second_limit=100_000)
    salesforce.start()
    try:
        server = hubspot.start()
        try:
            assert salesforce.server is not None
            sf = Salesforce(instance_url="https://sandbox.my.salesforce.com", session_id=salesforce.access_token(),
                            session=sandbox_session(salesforce.server.url), version="59.0")
            yield seed_data, sf, HubSpot(access_token="sandbox-token", host=server.url, client_side_validation=True)
        finally:
            hubspot.stop()
    finally:
        salesforce.stop()


def test_opportunity_history_reads_back_through_simple_salesforce(served: tuple[SeedData, Salesforce, HubSpot]) -> None:
    seed_data, sf, _ = served
    rows = sf.query_all("SELECT OpportunityId, StageName, CreatedDate, CreatedById FROM OpportunityHistory "
                        "ORDER BY OpportunityId, CreatedDate")["records"]
    paths: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
    for row in rows:
        paths[row["OpportunityId"]].append((row["StageName"], _sf_time(row["CreatedDate"])))
    opps = sf.query_all("SELECT Id, StageName, LastStageChangeDate, Discount_Percent__c, Discount_Approved_By__c "
                        "FROM Opportunity")["records"]
    assert len(opps) == len(seed_data.salesforce["Opportunity"])
    for record in opps:
        truth = seed_data.truth.deals[("salesforce", "Opportunity", record["Id"])]
        assert paths[record["Id"]] == truth.path
        assert record["StageName"] == truth.stage and record["Discount_Percent__c"] == truth.discount
        if len(truth.path) > 1:
            assert _sf_time(record["LastStageChangeDate"]) == truth.stage_entered_at
    described = {f["name"]: f for f in sf.Lead.describe()["fields"]}
    assert [v["value"] for v in described["Disposition__c"]["picklistValues"]] == [
        "Qualified", "Not Ready", "Bad Fit", "No Response", "Do Not Contact"]
    assert described["Disposition_Date__c"]["type"] == "datetime"
    leads = sf.query_all("SELECT Id, Disposition__c, Disposition_Date__c FROM Lead WHERE Disposition__c != null")["records"]
    expected = {k[2]: t for k, t in seed_data.truth.dispositions.items() if k[1] == "Lead"}
    assert {r["Id"]: r["Disposition__c"] for r in leads} == {i: t.disposition for i, t in expected.items()}
    assert all(_sf_time(r["Disposition_Date__c"]) == expected[r["Id"]].set_at for r in leads)


def test_deal_history_reads_back_through_the_hubspot_sdk(served: tuple[SeedData, Salesforce, HubSpot]) -> None:
    seed_data, _, hs = served
    labels: dict[str, dict[str, str]] = {}
    for pipeline in hs.crm.pipelines.pipelines_api.get_all("deals").results:
        stages = sorted(pipeline.stages, key=lambda s: s.display_order)
        labels[pipeline.id] = ({s.id: SOP[n] for n, s in enumerate(stages)} if pipeline.id != RENEWALS
                               else {s.id: s.label for s in stages})
    ids = [d["id"] for d in seed_data.hubspot["deals"]]
    read = hs.crm.deals.batch_api.read(BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id=i) for i in ids], properties=["pipeline", "dealstage", "discount_percent"],
        properties_with_history=["dealstage"]))
    assert len(read.results) == len(ids)
    for deal in read.results:
        truth = seed_data.truth.deals[("hubspot", "deals", deal.id)]
        pipeline = deal.properties["pipeline"]
        history = deal.properties_with_history["dealstage"]
        assert [(labels[pipeline][h.value], h.timestamp) for h in reversed(history)] == truth.path
        assert {(h.source_type, h.updated_by_user_id) for h in history} == {("CRM_UI", history[0].updated_by_user_id)}
        assert labels[pipeline][deal.properties["dealstage"]] == truth.stage
        discount = deal.properties["discount_percent"]
        assert (None if discount in (None, "") else float(discount)) == truth.discount
    contacts = [k[2] for k in seed_data.truth.dispositions if k[0] == "hubspot"]
    assert 0 < len(contacts) <= 100
    people = hs.crm.contacts.batch_api.read(ContactBatch(
        inputs=[ContactId(id=i) for i in contacts], properties=["disposition", "disposition_date"]))
    assert len(people.results) == len(contacts)
    for contact in people.results:
        truth_of = seed_data.truth.dispositions[("hubspot", "contacts", contact.id)]
        assert contact.properties["disposition"] == truth_of.disposition
        assert datetime.fromisoformat(contact.properties["disposition_date"]) == truth_of.set_at
