"""People from forms and lists found or created in the sandbox CRMs, then decided like pushed changes.

Submissions are stored as the intake stores them and processed by ``process_events``; what a
rep would see is read back through the official SDKs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from connector.pipeline.capture import capture_changes, store_submissions, stored_submissions
from connector.pipeline.connections import open_adapter
from connector.pipeline.events import process_events
from connector.pipeline.submissions import Submission, read_fields, submission
from connector.store.db import session_factory
from connector.store.models import InboxRow, QuarantineRow
from connector.store.repositories import InboxEvent
from tests.pipeline.test_deletions_and_merges import World, world  # noqa: F401 - the shared fixture

NOW = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)


def _taken(source: str, **fields: Any) -> Submission:
    values, problems = read_fields(fields.items())
    assert problems == []
    return submission(source, values, received_at=NOW, channel="form", ip="203.0.113.9")


def _submit(world: World, source: str, **fields: Any) -> Submission:  # noqa: F811
    taken = _taken(source, **fields)
    store_submissions(world.config, world.engine, [taken], now=NOW)
    return taken


def _contacts(world: World, email: str) -> list[Any]:  # noqa: F811
    body = {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": email.lower()}]}],
            "properties": ["email", "firstname", "lastname", "company", "jobtitle", "hubspot_owner_id",
                           "relay_score", "relay_routing_reason", "relay_lead_source", "utm_source", "utm_campaign",
                           "relay_consent", "relay_consent_version"], "limit": 10}
    return list(world.hs.crm.contacts.search_api.do_search(public_object_search_request=body).results)


def _unprocessed(world: World) -> int:  # noqa: F811
    with session_factory(world.engine).begin() as session:
        return len(session.scalars(select(InboxRow).where(InboxRow.processed_at.is_(None))).all())


def test_a_website_form_creates_a_hubspot_contact_that_relay_then_owns_and_scores(world: World) -> None:  # noqa: F811
    _submit(world, "website", email="Ada.Park@Globex.example", first_name="Ada", last_name="Park",
            company="Globex", title="VP Sales", utm_source="google", utm_campaign="spring-launch",
            consent=["marketing_email", "sales_contact"], consent_text="You may email me.", consent_version="v3")

    [run] = process_events(world.config, world.engine)

    [contact] = _contacts(world, "ada.park@globex.example")
    shown = contact.properties
    assert (shown["firstname"], shown["lastname"], shown["company"], shown["jobtitle"]) == (
        "Ada", "Park", "Globex", "VP Sales")
    assert shown["hubspot_owner_id"] and shown["relay_score"] and shown["relay_routing_reason"]
    assert (shown["relay_lead_source"], shown["utm_source"], shown["utm_campaign"]) == (
        "Website form", "google", "spring-launch")
    assert (shown["relay_consent"], shown["relay_consent_version"]) == ("marketing_email, sales_contact", "v3")
    assert run.summary is not None and run.summary.read["contacts"] == 1
    assert _unprocessed(world) == 0


def test_a_second_post_of_a_known_email_in_another_case_updates_and_never_empties(world: World) -> None:  # noqa: F811
    _submit(world, "website", email="grace@initech.example", first_name="Grace", company="Initech",
            title="Analyst")
    process_events(world.config, world.engine)
    [first] = _contacts(world, "grace@initech.example")

    _submit(world, "website", email="GRACE@Initech.Example", title="Director of Sales", company="",
            utm_source="newsletter")
    process_events(world.config, world.engine)

    [again] = _contacts(world, "grace@initech.example")
    assert again.id == first.id
    assert again.properties["jobtitle"] == "Director of Sales"
    assert again.properties["company"] == "Initech"  # an empty value never overwrites one
    assert again.properties["firstname"] == "Grace"
    assert again.properties["utm_source"] == "newsletter"


def test_two_partner_posts_of_one_email_in_one_batch_create_one_salesforce_lead(world: World) -> None:  # noqa: F811
    _submit(world, "partner", email="tomas@umbrella.example", last_name="Novak", submission_id="p-1")
    _submit(world, "partner", email="Tomas@Umbrella.example", first_name="Tomas", title="Head of IT",
            submission_id="p-2")

    process_events(world.config, world.engine)

    leads = world.sf.query("SELECT Id, FirstName, LastName, Company, Title, LeadSource, OwnerId, Relay_Score__c "
                           "FROM Lead WHERE Email = 'tomas@umbrella.example'")["records"]
    assert len(leads) == 1
    lead = leads[0]
    assert (lead["FirstName"], lead["LastName"], lead["Title"]) == ("Tomas", "Novak", "Head of IT")
    assert (lead["Company"], lead["LeadSource"]) == ("Not provided", "Partner Referral")
    assert lead["Relay_Score__c"] is not None


def test_a_person_kept_as_a_salesforce_contact_is_updated_not_made_a_lead(world: World) -> None:  # noqa: F811
    contact = world.sf.query("SELECT Id, Email, LeadSource FROM Contact WHERE Email != null ORDER BY Id LIMIT 1")[
        "records"][0]
    email = contact["Email"]
    leads_before = world.sf.query(f"SELECT Id FROM Lead WHERE Email = '{email}'")["totalSize"]

    _submit(world, "partner", email=email.upper(), title="Chief Revenue Officer")
    process_events(world.config, world.engine)

    assert world.sf.query(f"SELECT Id FROM Lead WHERE Email = '{email}'")["totalSize"] == leads_before
    after = world.sf.Contact.get(contact["Id"])
    assert after["Title"] == "Chief Revenue Officer"
    assert after["LeadSource"] == (contact["LeadSource"] or "Partner Referral")  # the original source is kept


def test_a_submission_salesforce_refuses_is_quarantined_while_the_rest_goes_on(world: World) -> None:  # noqa: F811
    _submit(world, "partner", email="long.name@acme.example", first_name="N" * 60, company="Acme")
    _submit(world, "partner", email="fine@acme.example", last_name="Fine", company="Acme")

    process_events(world.config, world.engine)

    assert world.sf.query("SELECT Id FROM Lead WHERE Email = 'fine@acme.example'")["totalSize"] == 1
    assert world.sf.query("SELECT Id FROM Lead WHERE Email = 'long.name@acme.example'")["totalSize"] == 0
    with session_factory(world.engine).begin() as session:
        [row] = session.scalars(select(QuarantineRow)).all()
    assert row.connection == "salesforce" and row.object == "Lead"
    assert "FirstName" in row.reason and "partner:" in row.reason
    assert row.payload["submission"]["email"] == "long.name@acme.example"
    assert _unprocessed(world) == 0  # quarantined, not retried forever


def test_a_dry_run_plans_creates_and_updates_and_writes_nothing(world: World) -> None:  # noqa: F811
    known = world.sf.query("SELECT Email FROM Lead WHERE Email != null AND IsConverted = false ORDER BY Id LIMIT 1")[
        "records"][0]["Email"]
    events = [InboxEvent(i, "capture", taken.key, {"connection": "salesforce", "event": taken.as_json()}, NOW, None)
              for i, taken in enumerate([_taken("events", email="new.visitor@hooli.example", company="Hooli"),
                                         _taken("events", email=known, title="Brand New Title")], start=1)]
    adapter = open_adapter(world.config, "salesforce")

    result = capture_changes(world.config, "salesforce", adapter, events, now=NOW, dry_run=True)

    assert [(plan.email, plan.action) for plan in result.plans] == [
        ("new.visitor@hooli.example", "create"), (known.lower(), "update")]
    assert result.plans[0].fields["LeadSource"] == "Trade Show"
    assert result.plans[1].fields == {"Title": "Brand New Title"}
    assert set(adapter.calls.by_kind()) <= {"auth", "read"}
    assert world.sf.query("SELECT Id FROM Lead WHERE Email = 'new.visitor@hooli.example'")["totalSize"] == 0
    assert world.sf.query(f"SELECT Title FROM Lead WHERE Email = '{known}'")["records"][0]["Title"] != "Brand New Title"


def test_consent_and_utm_are_kept_in_relay_and_read_back(world: World) -> None:  # noqa: F811
    _submit(world, "website", email="mia@stark.example", utm_medium="cpc", consent={"purposes": ["newsletter"],
                                                                                     "version": "2026-01"})
    _submit(world, "website", email="mia@stark.example", utm_medium="cpc", consent={"purposes": ["newsletter"],
                                                                                     "version": "2026-01"})

    [kept] = stored_submissions(world.engine, email="MIA@stark.example")

    assert kept.connection == "hubspot" and kept.key.startswith("website:sha256:")
    assert dict(kept.submission.utm) == {"utm_medium": "cpc"}
    assert kept.submission.consent is not None and kept.submission.consent.purposes == ("newsletter",)
    assert kept.submission.consent.version == "2026-01" and kept.submission.ip == "203.0.113.9"


def test_field_names_match_their_common_variants_and_consent_left_blank_says_nothing() -> None:
    fields, problems = read_fields([(" E-mail ", "Zoe@Acme.example"), ("First Name", "Zoe"), ("Job Title", "CTO"),
                                    ("UTM Source", "expo"), ("Consent", ""), ("Badge", "B-1")], unknown="ignore")
    assert problems == []
    assert fields == {"email": "zoe@acme.example", "first_name": "Zoe", "title": "CTO", "utm_source": "expo"}

    _, problems = read_fields([("email", "a@b.example"), ("Email", "c@d.example"), ("consent", "no thanks!")])
    assert [(p.field, p.message) for p in problems] == [
        ("Email", "given twice (also as 'email')"),
        ("consent", "'no thanks!' is not a purpose name (letters, digits, space and _ . : / -, at most 64)")]
    declined, _ = read_fields([("email", "a@b.example"), ("consent", "no")])
    assert declined["consent"].given is False and declined["consent"].purposes == ()
