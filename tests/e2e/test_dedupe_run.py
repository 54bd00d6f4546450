"""``relay dedupe run``: the duplicates merged or flagged in the CRMs, read back through the official SDKs."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from connector.store.db import create_engine_for
from connector.store.models import AuditRow, MergeRow

from ._cli import relay, sync_summary
from ._crm import hubspot_client, salesforce_client
from ._world import Crms, RelayEnv, config_copy


def _store(relay_env: RelayEnv) -> Engine:
    return create_engine_for(relay_env.store_url)


def test_duplicates_are_merged_in_hubspot_and_flagged_in_salesforce_once(
        relay_env: RelayEnv, crms: Crms, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_dir = config_copy(tmp_path / "config", salesforce={"duplicates": "flag"}, hubspot={"duplicates": "merge"})
    # a duplicate HubSpot contact of a seeded one: same person, another address form
    hs = hubspot_client(crms.hubspot)
    first = hs.crm.contacts.basic_api.get_page(limit=1, properties=["email", "firstname", "lastname", "phone",
                                                                      "company"]).results[0]
    local, domain = first.properties["email"].split("@")
    from hubspot.crm.contacts import SimplePublicObjectInputForCreate

    twin = hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={
        "email": f"{local.upper()}+events@{domain}", "firstname": first.properties["firstname"],
        "lastname": first.properties["lastname"], "phone": "", "company": first.properties["company"] or "",
        "jobtitle": "Head of Things"}))
    sync_summary("salesforce")  # with the shipped setting (report only): the syncs merge nothing
    sync_summary("hubspot")
    monkeypatch.setenv("RELAY_CONFIG_DIR", str(config_dir))  # then the admin chooses merge and flag

    result = relay("dedupe", "run")

    assert result.exit_code == 0, result.output
    assert "hubspot/contacts: merged" in result.output and "salesforce/Lead: merged 0, flagged" in result.output
    engine = _store(relay_env)
    with engine.connect() as db:
        merges = db.execute(select(MergeRow)).all()
        audit = db.execute(select(AuditRow).where(AuditRow.action.in_(["merged", "duplicate_flagged"]))).all()
    assert merges and all(m.status == "done" for m in merges)
    hubspot_merges = [m for m in merges if m.connection == "hubspot"]
    assert any({first.id, twin.id} == {m.survivor_id, *m.loser_ids} for m in hubspot_merges), hubspot_merges
    # HubSpot: the loser now answers with the survivor, and the survivor kept the filled title
    merged = next(m for m in hubspot_merges if {first.id, twin.id} == {m.survivor_id, *m.loser_ids})
    loser = merged.loser_ids[0]
    answer = hs.crm.contacts.basic_api.get_by_id(loser, properties=["jobtitle", "hs_merged_object_ids"])
    assert answer.id == merged.outcome["survivor_id"]
    # Salesforce: each flagged duplicate lead has a task naming the record it duplicates
    sf = salesforce_client(crms.salesforce)
    flagged = [m for m in merges if m.connection == "salesforce"]
    assert flagged
    for merge in flagged:
        for lead in merge.loser_ids:
            tasks = sf.query_all(f"SELECT Subject, OwnerId FROM Task WHERE WhoId = '{lead}'")["records"]
            assert any(t["Subject"] == f"Possible duplicate of Lead {merge.survivor_id}" for t in tasks), tasks
        assert sf.Lead.get(merge.survivor_id)["IsDeleted"] is False  # flagged, not merged
    assert {a.action for a in audit} == {"merged", "duplicate_flagged"}
    assert all(a.detail["score"] > 0 and a.detail["reasons"] for a in audit)

    # a second run does nothing new
    again = relay("dedupe", "run")
    assert again.exit_code == 0, again.output
    assert "merged 0, flagged 0" in again.output or "no duplicates" in again.output
    with engine.connect() as db:
        assert len(db.execute(select(MergeRow)).all()) == len(merges)


def test_the_guard_stops_a_run_that_would_merge_too_much(
        relay_env: RelayEnv, crms: Crms, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_dir = config_copy(tmp_path / "config", salesforce={"duplicates": "merge"})
    rules = config_dir / "rules" / "matching.yaml"
    rules.write_text(rules.read_text(encoding="utf-8").replace("max_records: 200", "max_records: 0"), encoding="utf-8")
    sync_summary("salesforce")  # report only: the sync's own pass does not run
    monkeypatch.setenv("RELAY_CONFIG_DIR", str(config_dir))
    leads_before = len(salesforce_client(crms.salesforce).query_all("SELECT Id FROM Lead")["records"])

    result = relay("dedupe", "run")

    assert result.exit_code == 3, result.output
    assert "blast-radius guard: nothing merged" in result.output
    assert len(salesforce_client(crms.salesforce).query_all("SELECT Id FROM Lead")["records"]) == leads_before
    with _store(relay_env).connect() as db:
        stopped = db.execute(select(AuditRow).where(AuditRow.action == "merge_guard_stopped")).all()
        assert [row.connection for row in stopped] == ["salesforce"]
        assert db.execute(select(MergeRow)).all() == []
        from connector.store.models import NotificationRow

        alerts = db.execute(select(NotificationRow).where(NotificationRow.kind == "merge_guard_stopped")).all()
    # the RevOps admins are told (by email and Slack in the shipped alerts.yaml; no SMTP host or Slack
    # webhook is configured here, so the messages are kept as skipped, with the reason)
    assert sorted(a.channel for a in alerts) == ["email", "slack"]
    again = relay("dedupe", "run")
    assert again.exit_code == 3
    with _store(relay_env).connect() as db:
        assert len(db.execute(select(NotificationRow).where(NotificationRow.kind == "merge_guard_stopped")).all()) \
            == 2  # the same stop, the same day: told once


def test_a_stewards_decision_binds_the_matcher_and_is_never_asked_again(
        relay_env: RelayEnv, crms: Crms, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from connector import cli

    monkeypatch.setattr(cli.console, "width", 250)  # as piped (pytest-xdist exports COLUMNS=80)
    hs = hubspot_client(crms.hubspot)
    from hubspot.crm.contacts import SimplePublicObjectInputForCreate

    made = [hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties=props)).id for props in (
        {"firstname": "Ottoline", "lastname": "Quennell", "company": "Brackenfield Instruments Ltd",
         "email": "ottoline.quennell@gmail.com"},
        {"firstname": "Ottoline", "lastname": "Quennell", "jobtitle": "Buyer"},  # the name alone: a review item
    )]
    keys = sorted(f"hubspot/contacts/{crm_id}" for crm_id in made)
    sync_summary("hubspot")

    first = relay("dedupe", "run")
    assert first.exit_code == 0, first.output
    listed = relay("dedupe", "reviews")
    assert keys[0] in listed.output and keys[1] in listed.output, listed.output
    assert "Ottoline Quennell" in listed.output
    engine = _store(relay_env)
    from connector.store.models import MatchReviewRow

    with engine.connect() as db:
        review = db.execute(select(MatchReviewRow).where(MatchReviewRow.left_key == keys[0])).one()
    assert review.right_key == keys[1] and review.status == "open"

    decided = relay("dedupe", "decide", str(review.id), "same", "--by", "dana@revops.example")
    assert decided.exit_code == 0, decided.output
    assert "are the same person (by dana@revops.example)" in decided.output

    report = relay("dedupe", "report", "--out", str(tmp_path / "report.csv"))
    assert report.exit_code == 0, report.output
    rows = (tmp_path / "report.csv").read_text(encoding="utf-8")
    assert all(f"merge,{keys[0]}" in rows or f"merge,{keys[1]}" in rows for _ in keys), rows
    again = relay("dedupe", "run")
    assert "review queue" not in again.output  # nothing new to ask
    with engine.connect() as db:
        assert len(db.execute(select(MatchReviewRow).where(MatchReviewRow.left_key == keys[0])).all()) == 1
    assert relay("dedupe", "decide", "999999", "same").exit_code == 2
    assert relay("dedupe", "decide", str(review.id), "maybe").exit_code == 2


def test_one_person_in_both_crms_with_two_addresses_becomes_one_identity(
        relay_env: RelayEnv, crms: Crms) -> None:
    from hubspot.crm.contacts import SimplePublicObjectInputForCreate

    hs = hubspot_client(crms.hubspot)
    sf = salesforce_client(crms.salesforce)
    contact = hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={
        "firstname": "Philippa", "lastname": "Wrenfield", "email": "pippa.wrenfield@gmail.com",
        "phone": "+44 20 7946 0321", "company": "Kestrelmoor Analytics Ltd"})).id
    lead = sf.Lead.create({"FirstName": "Philippa", "LastName": "Wrenfield", "Company": "Kestrelmoor Analytics",
                           "Email": "p.wrenfield@kestrelmoor.co.uk", "Phone": "020 7946 0321"})["id"]
    sync_summary("salesforce")
    sync_summary("hubspot")
    assert sf.Lead.get(lead)["Relay_Id__c"] != hs.crm.contacts.basic_api.get_by_id(
        contact, properties=["relay_id"]).properties["relay_id"]  # two emails: two identities so far

    result = relay("dedupe", "run")
    assert result.exit_code == 0, result.output
    assert "identity graph:" in result.output

    # the next full syncs decide and write them as one person: one relay id in both CRMs
    sync_summary("salesforce", "--full")
    sync_summary("hubspot", "--full")
    relay_in_sf = sf.Lead.get(lead)["Relay_Id__c"]
    relay_in_hs = hs.crm.contacts.basic_api.get_by_id(contact, properties=["relay_id"]).properties["relay_id"]
    assert relay_in_sf and relay_in_sf == relay_in_hs
    with _store(relay_env).connect() as db:
        linked = db.execute(select(AuditRow).where(AuditRow.action == "linked")).all()
    assert any(row.crm_id in (lead, contact) for row in linked)
    assert all(row.detail["score"] >= 7 and "first_name" in row.detail["reasons"] for row in linked
               if row.crm_id in (lead, contact))


def test_salesforce_duplicates_are_merged_when_configured(
        relay_env: RelayEnv, crms: Crms, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sync_summary("salesforce")
    monkeypatch.setenv("RELAY_CONFIG_DIR", str(config_copy(tmp_path / "config", salesforce={"duplicates": "merge"})))

    result = relay("dedupe", "run")

    assert result.exit_code == 0, result.output
    engine = _store(relay_env)
    with engine.connect() as db:
        merges = [m for m in db.execute(select(MergeRow)).all() if m.connection == "salesforce"]
    assert merges and all(m.status == "done" and m.mode == "merge" for m in merges)
    sf = salesforce_client(crms.salesforce)
    for merge in merges:
        ids = "','".join(merge.loser_ids)
        gone = sf.query_all(f"SELECT Id, IsDeleted, MasterRecordId FROM Lead WHERE Id IN ('{ids}')",
                            include_deleted=True)["records"]
        assert {(r["Id"], r["IsDeleted"], r["MasterRecordId"]) for r in gone} == \
            {(loser, True, merge.survivor_id) for loser in merge.loser_ids}
    # the next sync sees the losers gone and keeps deciding the survivors only
    after = sync_summary("salesforce")
    assert after["write_failures"] == []
    again = relay("dedupe", "run")
    assert again.exit_code == 0, again.output
    assert "merged 0" in again.output or "no duplicates" in again.output


def test_review_items_become_steward_tasks_and_their_answer_is_read_back(
        relay_env: RelayEnv, crms: Crms, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sf = salesforce_client(crms.salesforce)
    steward = next(u for u in sf.query_all("SELECT Id, Email, IsActive FROM User WHERE IsActive = true ORDER BY Id")[
        "records"] if u["Email"])
    config_dir = config_copy(tmp_path / "config")
    rules = config_dir / "rules" / "matching.yaml"
    rules.write_text(rules.read_text(encoding="utf-8").replace(
        "  connection: null         # e.g. salesforce\n  steward: null ",
        f"  connection: salesforce\n  steward: {steward['Email']} "), encoding="utf-8")
    monkeypatch.setenv("RELAY_CONFIG_DIR", str(config_dir))
    from hubspot.crm.contacts import SimplePublicObjectInputForCreate

    hs = hubspot_client(crms.hubspot)
    made = sorted(hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties=props)).id for props in (
        {"firstname": "Ottoline", "lastname": "Quennell", "company": "Brackenfield Instruments Ltd",
         "email": "ottoline.quennell@gmail.com"},
        {"firstname": "Ottoline", "lastname": "Quennell", "jobtitle": "Buyer"},
    ))
    sync_summary("hubspot")

    first = relay("dedupe", "run")
    assert first.exit_code == 0, first.output
    assert "review tasks created" in first.output
    tasks = sf.query_all("SELECT Id, Subject, OwnerId, Description, Status FROM Task WHERE Subject LIKE "
                         "'Relay review %'")["records"]
    mine = [t for t in tasks if all(crm_id in (t["Description"] or "") for crm_id in made)]
    assert len(mine) == 1 and mine[0]["OwnerId"] == steward["Id"] and mine[0]["Status"] == "Not Started"
    assert "Ottoline" in mine[0]["Description"] and "SAME or DIFFERENT" in mine[0]["Description"]

    sf.Task.update(mine[0]["Id"], {"Description": "SAME - one buyer, two forms\n" + mine[0]["Description"],
                                   "Status": "Completed"})
    second = relay("dedupe", "run")
    assert second.exit_code == 0, second.output
    assert "1 answers read back" in second.output
    from connector.store.models import MatchReviewRow

    with _store(relay_env).connect() as db:
        review = db.execute(select(MatchReviewRow).where(MatchReviewRow.task_id == mine[0]["Id"])).one()
    assert (review.status, review.decided_by) == ("same", f"crm task {mine[0]['Id']}")
    # decided: no task again, and the two are one person from now on
    third = relay("dedupe", "run")
    assert "review tasks created" not in third.output
    assert len(sf.query_all("SELECT Id FROM Task WHERE Subject LIKE 'Relay review %'")["records"]) == len(tasks)


def test_a_sync_of_a_connection_that_merges_runs_the_dedupe_pass_after_it(
        relay_env: RelayEnv, crms: Crms, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_CONFIG_DIR", str(config_copy(tmp_path / "config", hubspot={"duplicates": "merge"})))
    from hubspot.crm.contacts import SimplePublicObjectInputForCreate

    hs = hubspot_client(crms.hubspot)
    first = hs.crm.contacts.basic_api.get_page(limit=1, properties=["email", "firstname", "lastname"]).results[0]
    local, domain = first.properties["email"].split("@")
    twin = hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={
        "email": f"{local}+webinar@{domain}", "firstname": first.properties["firstname"],
        "lastname": first.properties["lastname"]})).id

    summary = sync_summary("hubspot")

    assert summary["duplicates"] is not None and summary["duplicates"]["merged"] >= 1, summary["duplicates"]
    assert summary["duplicates"]["stopped"] is None and summary["duplicates"]["failures"] == []
    merged = hs.crm.contacts.basic_api.get_by_id(twin).id
    assert merged != twin or hs.crm.contacts.basic_api.get_by_id(first.id).id == twin  # one record answers both
    again = sync_summary("hubspot")
    assert again["duplicates"]["merged"] == 0  # a second run does nothing new
    assert sync_summary("salesforce")["duplicates"] is None  # salesforce only reports its duplicates


def test_sets_flagged_before_are_merged_when_the_admin_switches_to_merge(
        relay_env: RelayEnv, crms: Crms, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sync_summary("salesforce")
    monkeypatch.setenv("RELAY_CONFIG_DIR", str(config_copy(tmp_path / "flag", salesforce={"duplicates": "flag"})))
    flagged = relay("dedupe", "run")
    assert flagged.exit_code == 0 and "flagged 0" not in flagged.output, flagged.output
    monkeypatch.setenv("RELAY_CONFIG_DIR", str(config_copy(tmp_path / "merge", salesforce={"duplicates": "merge"})))

    merged = relay("dedupe", "run")

    assert merged.exit_code == 0, merged.output
    assert "salesforce/Lead: merged 0" not in merged.output, merged.output
    with _store(relay_env).connect() as db:
        modes = {(m.mode, m.status) for m in db.execute(select(MergeRow)).all()}
    assert modes == {("flag", "done"), ("merge", "done")}
