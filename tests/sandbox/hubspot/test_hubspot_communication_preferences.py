"""The communication preferences API (v3) and the per-type opt-out properties, through hubspot-api-client.

Sources: HubSpot's communication preferences v3 reference (``GET /definitions``, ``GET
/status/email/{emailAddress}``, ``POST /subscribe``, ``POST /unsubscribe``), the SDK's models (parsed
with ``client_side_validation``: every required key, the enumerations) and the contact properties
``hs_email_optout_<subscription id>`` ("Opted out of email: <type>"), read-only to API writes
(``READ_ONLY_VALUE``); a token whose app lacks the scope answers 403 ``MISSING_SCOPES``.
"""

from __future__ import annotations

import json
from datetime import datetime
from http import HTTPStatus
from pathlib import Path

import httpx
import pytest
from hubspot import HubSpot
from hubspot.communication_preferences import ApiException as PreferencesApiException
from hubspot.communication_preferences import PublicUpdateSubscriptionStatusRequest
from hubspot.crm.contacts import (
    ApiException,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot_portal import TOKEN, Seed, client, contact, hs, sandbox  # noqa: F401  (fixtures)

from crm_sandbox.hubspot import HubSpotSandbox

ONE_TO_ONE = "7880017"
OPT_OUT = f"hs_email_optout_{ONE_TO_ONE}"


def _request(email: str, subscription_id: str = ONE_TO_ONE, **extra: str) -> PublicUpdateSubscriptionStatusRequest:
    return PublicUpdateSubscriptionStatusRequest(email_address=email, subscription_id=subscription_id, **extra)


def _contact(hs: HubSpot, email: str) -> str:  # noqa: F811
    return str(hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": email})).id)


def _opt_out(hs: HubSpot, contact_id: str) -> str | None:  # noqa: F811
    found = hs.crm.contacts.basic_api.get_by_id(contact_id, properties=[OPT_OUT, "hs_lastmodifieddate"])
    value: str | None = found.properties.get(OPT_OUT)
    return value


def test_definitions_list_the_portals_email_subscription_types(hs: HubSpot) -> None:  # noqa: F811
    answer = hs.communication_preferences.definition_api.get_page()
    found = {d.name: d for d in answer.subscription_definitions}
    assert list(found) == ["Marketing Information", "One to One", "Customer Service Communication"]
    one = found["One to One"]
    assert (one.id, one.purpose, one.communication_method, one.is_active, one.is_default) == (
        ONE_TO_ONE, "Sales", "Email", True, True)
    assert isinstance(one.created_at, datetime) and isinstance(one.updated_at, datetime)
    assert all(d.id.isdigit() for d in found.values())


def test_each_type_has_a_read_only_opt_out_property_on_contacts(hs: HubSpot) -> None:  # noqa: F811
    listed = {p.name: p for p in hs.crm.properties.core_api.get_all("contacts").results}
    prop = listed[OPT_OUT]
    assert prop.label == "Opted out of email: One to One" and prop.group_name == "emailinformation"
    assert prop.modification_metadata.read_only_value is True
    assert {"hs_email_optout_7880016", "hs_email_optout_7880018"} <= set(listed)
    made = _contact(hs, "ro@acme.example")
    with pytest.raises(ApiException) as caught:
        hs.crm.contacts.basic_api.update(made, SimplePublicObjectInput(properties={OPT_OUT: "true"}))
    assert caught.value.status == HTTPStatus.BAD_REQUEST
    body = json.loads(caught.value.body)
    assert body["category"] == "VALIDATION_ERROR" and body["errors"][0]["code"] == "READ_ONLY_VALUE"
    assert body["errors"][0]["message"] == f'"{OPT_OUT}" is a read only property; its value cannot be set.'
    assert body["message"].startswith("Property values were not valid: ")
    with pytest.raises(ApiException):
        hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(
            properties={"email": "ro2@acme.example", OPT_OUT: "true"}))
    assert _opt_out(hs, made) is None


def test_unsubscribing_shows_on_the_contact_and_moves_its_modification_date(hs: HubSpot) -> None:  # noqa: F811
    made = _contact(hs, "pat@acme.example")
    before = hs.crm.contacts.basic_api.get_by_id(made, properties=["hs_lastmodifieddate"]).properties
    status = hs.communication_preferences.status_api.unsubscribe(
        _request("Pat@Acme.example", legal_basis="LEGITIMATE_INTEREST_PQL", legal_basis_explanation="asked us"))
    assert (status.id, status.name, status.status, status.source_of_status, status.legal_basis) == (
        ONE_TO_ONE, "One to One", "NOT_SUBSCRIBED", "SUBSCRIPTION_STATUS", "LEGITIMATE_INTEREST_PQL")
    after = hs.crm.contacts.basic_api.get_by_id(made, properties=[OPT_OUT, "hs_lastmodifieddate"]).properties
    assert after[OPT_OUT] == "true" and after["hs_lastmodifieddate"] >= before["hs_lastmodifieddate"]
    statuses = hs.communication_preferences.status_api.get_email_status("pat@acme.example")
    assert statuses.recipient == "pat@acme.example"
    assert [(s.id, s.status) for s in statuses.subscription_statuses] == [(ONE_TO_ONE, "NOT_SUBSCRIBED")]
    # Searchable like any property.
    body = {"filterGroups": [{"filters": [{"propertyName": OPT_OUT, "operator": "EQ", "value": "true"}]}],
            "properties": [OPT_OUT]}
    assert [r.id for r in hs.crm.contacts.search_api.do_search(public_object_search_request=body).results] == [made]


def test_a_status_already_in_force_is_refused_and_subscribing_clears_the_opt_out(hs: HubSpot) -> None:  # noqa: F811
    made = _contact(hs, "lee@acme.example")
    hs.communication_preferences.status_api.unsubscribe(_request("lee@acme.example"))
    with pytest.raises(PreferencesApiException) as caught:
        hs.communication_preferences.status_api.unsubscribe(_request("lee@acme.example"))
    assert caught.value.status == HTTPStatus.BAD_REQUEST
    assert json.loads(caught.value.body)["message"] == f"lee@acme.example is already unsubscribed from subscription {ONE_TO_ONE}"
    again = hs.communication_preferences.status_api.subscribe(_request("lee@acme.example"))
    assert again.status == "SUBSCRIBED"
    assert _opt_out(hs, made) is None
    assert [(s.id, s.status) for s in hs.communication_preferences.status_api.get_email_status(
        "lee@acme.example").subscription_statuses] == [(ONE_TO_ONE, "SUBSCRIBED")]


def test_bad_requests_are_named(sandbox: HubSpotSandbox) -> None:  # noqa: F811
    assert sandbox.server is not None
    url, auth = sandbox.server.url, {"Authorization": f"Bearer {TOKEN}"}
    unknown = httpx.post(f"{url}/communication-preferences/v3/unsubscribe", headers=auth,
                         json={"emailAddress": "a@acme.example", "subscriptionId": "999"})
    bad_email = httpx.post(f"{url}/communication-preferences/v3/unsubscribe", headers=auth,
                           json={"emailAddress": "not an email", "subscriptionId": ONE_TO_ONE})
    bad_basis = httpx.post(f"{url}/communication-preferences/v3/subscribe", headers=auth,
                           json={"emailAddress": "a@acme.example", "subscriptionId": ONE_TO_ONE, "legalBasis": "WHY"})
    assert [a.status_code for a in (unknown, bad_email, bad_basis)] == [HTTPStatus.BAD_REQUEST] * 3
    assert unknown.json()["message"].startswith("No subscription definition with id 999 (known: 7880016, ")
    assert bad_email.json()["message"] == "Invalid email address: 'not an email'"
    assert bad_basis.json()["message"].startswith("legalBasis must be one of LEGITIMATE_INTEREST_PQL, ")


def test_a_contact_opted_out_of_all_email_is_not_subscribed_to_any_type(hs: HubSpot) -> None:  # noqa: F811
    hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"email": "all@acme.example", "hs_email_optout": "true"}))
    statuses = hs.communication_preferences.status_api.get_email_status("all@acme.example").subscription_statuses
    assert {(s.name, s.status, s.source_of_status) for s in statuses} == {
        (name, "NOT_SUBSCRIBED", "PORTAL_WIDE_STATUS")
        for name in ("Marketing Information", "One to One", "Customer Service Communication")}


def test_a_token_without_the_scope_gets_hubspots_403() -> None:
    box = HubSpotSandbox(denied_scopes="communication_preferences.read, communication_preferences.write")
    server = box.start()
    try:
        sdk = client(server)
        with pytest.raises(PreferencesApiException) as caught:
            sdk.communication_preferences.definition_api.get_page()
        error = caught.value
        assert error.status == HTTPStatus.FORBIDDEN
        body = json.loads(error.body)
        assert body["status"] == "error" and body["category"] == "MISSING_SCOPES"
        assert body["message"].startswith("This app hasn't been granted all required scopes to make this call.")
        assert body["errors"][0]["context"] == {"requiredGranularScopes": ["communication_preferences.read"]}
        assert body["correlationId"] == error.headers["X-HubSpot-Correlation-Id"]
        with pytest.raises(PreferencesApiException) as refused:
            sdk.communication_preferences.status_api.unsubscribe(_request("a@acme.example"))
        assert json.loads(refused.value.body)["errors"][0]["context"] == {
            "requiredGranularScopes": ["communication_preferences.write"]}
        assert sdk.crm.contacts.basic_api.get_page(limit=1).results == []  # the CRM scopes are still granted
        box.denied_scopes.clear()  # granted while it runs
        assert len(sdk.communication_preferences.definition_api.get_page().subscription_definitions) == 3
    finally:
        box.stop()


def test_seeded_opt_outs_show_in_the_status_api() -> None:
    box = HubSpotSandbox(Seed(hubspot={"contacts": [contact(1, **{OPT_OUT: "true"}), contact(2)]}))
    server = box.start()
    try:
        sdk = client(server)
        first, second = (sdk.crm.contacts.basic_api.get_by_id(str(n), properties=["email", OPT_OUT]).properties
                         for n in (1, 2))
        assert (first[OPT_OUT], second[OPT_OUT]) == ("true", None)
        assert [(s.name, s.status) for s in sdk.communication_preferences.status_api.get_email_status(
            first["email"]).subscription_statuses] == [("One to One", "NOT_SUBSCRIBED")]
        assert sdk.communication_preferences.status_api.get_email_status(second["email"]).subscription_statuses == []
    finally:
        box.stop()


def test_statuses_are_kept_in_the_state_file(tmp_path: Path) -> None:
    state = tmp_path / "hubspot.json"
    first = HubSpotSandbox(state_file=state)
    sdk = client(first.start())
    made = _contact(sdk, "kept@acme.example")
    sdk.communication_preferences.status_api.unsubscribe(_request("kept@acme.example"))
    sdk.communication_preferences.status_api.subscribe(_request("other@acme.example", "7880016"))
    first.stop()

    second = HubSpotSandbox(state_file=state)
    again = client(second.start())
    try:
        assert _opt_out(again, made) == "true"
        assert [(s.id, s.status) for s in again.communication_preferences.status_api.get_email_status(
            "other@acme.example").subscription_statuses] == [("7880016", "SUBSCRIBED")]
    finally:
        second.stop()
