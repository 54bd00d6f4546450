"""The HubSpot adapter reads a contact's opt-outs of consent.yaml's email subscription types (issue 12).

Over real HTTP against the sandbox portal: the names are looked up in ``GET
/communication-preferences/v3/definitions`` once per adapter (shared by later adapters as long as the
owners), the ``hs_email_optout_<id>`` properties are asked wherever the mapping reads
``hs_email_optout_*``, and each contact reads ``unsubscribed: <type>`` or None there. A name the portal
lacks, or a token without scope ``communication_preferences.read``, is a warning, once; the read goes on.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
import requests

from connector.adapters.cache import SharedCaches
from connector.adapters.retry import RetryPolicy
from connector.crms.hubspot.adapter import HubSpotAdapter
from connector.crms.hubspot.subscriptions import OPT_OUTS, opt_out_status, resolve
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.seed import SeedData

from ._sandbox_helpers import ManualClock, new_contacts, sandbox_admin

ONE_TO_ONE, MARKETING = "7880017", "7880016"
FIELDS = ["email", "firstname", OPT_OUTS]
DEFINITIONS = "/communication-preferences/v3/definitions"
ADAPTER_LOG = "connector.crms.hubspot.adapter"


def _adapter(url: str, policy: RetryPolicy, clock: ManualClock, types: tuple[str, ...] = ("One to One",),
             **kwargs: Any) -> HubSpotAdapter:
    return HubSpotAdapter("hubspot", url, "sandbox-token", retry=policy, search_overlap=timedelta(0),
                          searches_per_second=10_000, clock=clock, read_lag=timedelta(0),
                          subscription_types=types, caches=kwargs.pop("caches", SharedCaches()), **kwargs)


def _preferences(url: str, action: str, email: str, subscription_id: str = ONE_TO_ONE) -> None:
    answer = requests.post(f"{url}/communication-preferences/v3/{action}", timeout=10,
                           headers={"Authorization": "Bearer sandbox-token"},
                           json={"emailAddress": email, "subscriptionId": subscription_id})
    answer.raise_for_status()


def _made(adapter: HubSpotAdapter, count: int, tag: str) -> dict[str, str]:
    """Create ``count`` contacts; email -> id."""
    results = adapter.write(new_contacts(count, tag))
    assert all(r.success for r in results)
    return {str(r.op.fields["email"]): str(r.crm_id) for r in results}


def _by_id(pages: Any) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for page in pages for r in page.records}


def _definition_calls(url: str) -> int:
    return sum(1 for e in sandbox_admin(url, "GET", "ledger")["entries"] if e["path"] == DEFINITIONS)


def test_a_full_read_gives_each_contact_the_types_it_opted_out_of(
        hs_url: str, policy: RetryPolicy, clock: ManualClock, seed: SeedData) -> None:
    adapter = _adapter(hs_url, policy, clock)
    made = _made(adapter, 3, "sub")
    _preferences(hs_url, "unsubscribe", "sub0@acme.example")
    _preferences(hs_url, "unsubscribe", "sub1@acme.example", MARKETING)  # a type consent.yaml does not name

    records = _by_id(adapter.read("contacts", FIELDS, None))

    assert records[made["sub0@acme.example"]][OPT_OUTS] == "unsubscribed: One to One"
    assert records[made["sub1@acme.example"]][OPT_OUTS] is None
    assert records[made["sub2@acme.example"]][OPT_OUTS] is None
    seeded = {c["id"] for c in seed.hubspot["contacts"]
              if c["properties"].get(f"hs_email_optout_{ONE_TO_ONE}") == "true" and not c.get("archived")}
    assert {i for i, r in records.items() if r[OPT_OUTS]} == seeded | {made["sub0@acme.example"]}
    assert adapter.calls.by_kind()["schema"] == 1  # the definitions, once


def test_an_incremental_read_sees_an_opt_out_and_a_resubscription(
        hs_url: str, policy: RetryPolicy, clock: ManualClock) -> None:
    adapter = _adapter(hs_url, policy, clock)
    made = _made(adapter, 1, "inc")
    contact = made["inc0@acme.example"]
    cursor = list(adapter.read("contacts", FIELDS, None))[-1].cursor
    clock.advance(minutes=1)
    _preferences(hs_url, "unsubscribe", "inc0@acme.example")

    pages = list(adapter.read("contacts", FIELDS, cursor))
    assert _by_id(pages)[contact][OPT_OUTS] == "unsubscribed: One to One"

    clock.advance(minutes=1)
    _preferences(hs_url, "subscribe", "inc0@acme.example")
    again = _by_id(adapter.read("contacts", FIELDS, pages[-1].cursor))
    assert again[contact][OPT_OUTS] is None


def test_reads_by_id_and_by_email_carry_it_too(hs_url: str, policy: RetryPolicy, clock: ManualClock) -> None:
    adapter = _adapter(hs_url, policy, clock, (" one TO one ", "Marketing  Information"))  # case and spacing
    made = _made(adapter, 2, "ids")
    _preferences(hs_url, "unsubscribe", "ids0@acme.example")
    _preferences(hs_url, "unsubscribe", "ids0@acme.example", MARKETING)

    by_id = _by_id([adapter.read_ids("contacts", FIELDS, list(made.values()))])
    by_email = _by_id([adapter.read_by_email("contacts", FIELDS, list(made))])

    for records in (by_id, by_email):
        assert records[made["ids0@acme.example"]][OPT_OUTS] == "unsubscribed: One to One, Marketing Information"
        assert records[made["ids1@acme.example"]][OPT_OUTS] is None
    assert adapter.calls.by_kind()["schema"] == 1


def test_a_type_the_portal_lacks_is_named_in_one_warning_and_the_others_are_read(
        hs_url: str, policy: RetryPolicy, clock: ManualClock, caplog: pytest.LogCaptureFixture) -> None:
    adapter = _adapter(hs_url, policy, clock, ("Sales Email", "One to One"))
    made = _made(adapter, 1, "unk")
    _preferences(hs_url, "unsubscribe", "unk0@acme.example")

    with caplog.at_level(logging.WARNING, logger=ADAPTER_LOG):
        first = _by_id(adapter.read("contacts", FIELDS, None))
        _by_id([adapter.read_ids("contacts", FIELDS, list(made.values()))])

    assert first[made["unk0@acme.example"]][OPT_OUTS] == "unsubscribed: One to One"
    assert [r.getMessage() for r in caplog.records if r.name == ADAPTER_LOG] == [
        "connection 'hubspot': consent.yaml subscription_types.hubspot names 'Sales Email', but the HubSpot portal "
        "has no email subscription type of that name (its types: Marketing Information, One to One, Customer "
        "Service Communication): opt-outs of it are not read"]


def test_without_the_scope_the_read_goes_on_with_one_warning(
        hs_sandbox: HubSpotSandbox, hs_url: str, policy: RetryPolicy, clock: ManualClock,
        caplog: pytest.LogCaptureFixture) -> None:
    adapter = _adapter(hs_url, policy, clock)
    made = _made(adapter, 1, "scope")
    _preferences(hs_url, "unsubscribe", "scope0@acme.example")
    hs_sandbox.denied_scopes.add("communication_preferences.read")

    with caplog.at_level(logging.WARNING, logger=ADAPTER_LOG):
        records = _by_id(adapter.read("contacts", FIELDS, None))
        again = _by_id([adapter.read_ids("contacts", FIELDS, list(made.values()))])

    contact = made["scope0@acme.example"]
    assert records[contact]["email"] == "scope0@acme.example" and records[contact][OPT_OUTS] is None
    assert again[contact][OPT_OUTS] is None  # unknown, as for a contact that opted out of nothing
    (warning,) = [r.getMessage() for r in caplog.records if r.name == ADAPTER_LOG]
    assert warning.startswith("connection 'hubspot': HubSpot refused the list of email subscription types "
                              "(MISSING_SCOPES: This app hasn't been granted all required scopes")
    assert warning.endswith("give the private app scope communication_preferences.read. Until then opt-outs of One "
                            "to One (consent.yaml subscription_types.hubspot) are not read; hs_email_optout (opted out "
                            "of all email) still is")
    assert _definition_calls(hs_url) == 1  # refused once: not asked again by this adapter


def test_the_list_is_shared_by_later_adapters_as_long_as_the_owners(
        hs_url: str, policy: RetryPolicy, clock: ManualClock) -> None:
    caches = SharedCaches()
    for _ in range(3):
        _adapter(hs_url, policy, clock, caches=caches, owners_cache_seconds=300).opt_out_properties()
    assert _definition_calls(hs_url) == 1
    for _ in range(2):
        assert _adapter(hs_url, policy, clock, caches=SharedCaches()).opt_out_properties() == {
            f"hs_email_optout_{ONE_TO_ONE}": "One to One"}
    assert _definition_calls(hs_url) == 3  # no time to live: every adapter asks once


def test_nothing_is_asked_of_the_portal_when_no_type_is_named_or_the_mapping_reads_none(
        hs_url: str, policy: RetryPolicy, clock: ManualClock, caplog: pytest.LogCaptureFixture) -> None:
    off = _by_id(_adapter(hs_url, policy, clock, ()).read("contacts", FIELDS, None))
    assert off and all(r[OPT_OUTS] is None for r in off.values())  # asked, so answered: with nothing
    with caplog.at_level(logging.WARNING, logger=ADAPTER_LOG):
        adapter = _adapter(hs_url, policy, clock)
        unmapped = _by_id(adapter.read("contacts", ["email"], None))
        list(adapter.read("contacts", ["email"], None))
    assert all(OPT_OUTS not in r for r in unmapped.values())
    assert _definition_calls(hs_url) == 0
    assert [r.getMessage() for r in caplog.records if r.name == ADAPTER_LOG] == [
        "connection 'hubspot': consent.yaml subscription_types.hubspot names One to One, but the contacts mapping "
        "reads no subscription_status from 'hs_email_optout_*': opt-outs of those types are not read (map it, or "
        "set subscription_types.hubspot: [])"]


def test_the_stand_in_is_no_missing_property(hs_url: str, policy: RetryPolicy, clock: ManualClock) -> None:
    adapter = _adapter(hs_url, policy, clock)
    assert adapter.check_fields("contacts", ["email", OPT_OUTS, "emial"]) == ["emial"]


def test_names_resolve_to_every_type_of_that_name() -> None:
    types = [{"id": "1", "name": "One to One", "isActive": True}, {"id": "2", "name": "one to one"},
             {"id": "3", "name": "Newsletter", "isActive": False}, {"id": "", "name": "Broken"}]
    found = resolve(["ONE TO ONE", "Newsletter", "Webinars"], types)
    assert dict(found.properties) == {"hs_email_optout_1": "One to One", "hs_email_optout_2": "one to one",
                                      "hs_email_optout_3": "Newsletter"}
    assert found.unknown == ("Webinars",) and found.known == ("One to One", "one to one", "Newsletter")
    props = dict(found.properties)
    assert opt_out_status({"hs_email_optout_2": "TRUE", "hs_email_optout_3": "false"}, props) == \
        "unsubscribed: one to one"
    assert opt_out_status({"hs_email_optout_1": "true", "hs_email_optout_3": "true"}, props) == \
        "unsubscribed: One to One, Newsletter"
    assert opt_out_status({}, props) is None
