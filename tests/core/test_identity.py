"""Identity: person keys, clusters across CRMs, account match by domain."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.core.identity import (
    AccountIndex,
    active_owner_emails,
    cluster_people,
    match_account,
    owners_by_id,
    person_key,
    site_host,
)

from .helpers import account, lead, owner, team


@pytest.mark.parametrize(
    ("email", "key"),
    [
        ("Jane.Doe@Gmail.com", "janedoe@gmail.com"),
        ("j.a.n.e+crm@googlemail.com", "jane@gmail.com"),
        ("jane.doe+newsletter@acme.example", "jane.doe@acme.example"),  # dots kept off gmail
        (" JANE.DOE@ACME.EXAMPLE ", "jane.doe@acme.example"),
        ("+tag@acme.example", None),
        ("not an email", None),
        ("", None),
        (None, None),
    ],
)
def test_person_key(email: str | None, key: str | None) -> None:
    assert person_key(email) == key


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_person_key_never_raises_and_is_stable(raw: str) -> None:
    key = person_key(raw)
    if key is not None:
        assert person_key(key) == key


@pytest.mark.parametrize(
    ("value", "domain"),
    [("https://www.Acme.example/about", "acme.example"), ("acme.example", "acme.example"),
     ("www.acme.example:8080", "acme.example"), ("http://eu.acme.example", "eu.acme.example"),
     ("localhost", None), ("", None), (None, None), ("http://[::1", None)],
)
def test_site_host(value: str | None, domain: str | None) -> None:
    assert site_host(value) == domain


def test_same_person_in_both_crms_is_one_cluster_with_a_stable_id() -> None:
    sf = lead(1, email="Jane.Doe@gmail.com")
    hs = lead("h1", email="janedoe+x@googlemail.com", connection="hubspot", object="contacts",
              kind="lead")  # HubSpot contacts are routed as leads (mappings/hubspot.yaml)
    other = lead(2, email="bob@acme.example")
    no_email = lead(3, email=None)
    clusters = cluster_people([sf, hs, other, no_email])
    assert len(clusters) == 3
    by_key = {c.key: c for c in clusters}
    assert by_key["janedoe@gmail.com"].members == (hs.ref, sf.ref)
    assert by_key[None].members == (no_email.ref,)
    # Same records in another order: same ids.
    again = cluster_people([no_email, other, hs, sf])
    assert [c.identity_id for c in again] == [c.identity_id for c in clusters]
    assert all(c.identity_id.startswith("p_") and len(c.identity_id) == 18 for c in clusters)


def test_account_match_by_domain_or_website() -> None:
    accounts = [account("A1", "acme.example"), account("A2", None, website="https://www.globex.example")]
    assert match_account("acme.example", accounts).ref.crm_id == "A1"  # type: ignore[union-attr]
    assert match_account("globex.example", accounts).ref.crm_id == "A2"  # type: ignore[union-attr]
    assert match_account("eu.acme.example", accounts).ref.crm_id == "A1"  # type: ignore[union-attr]
    assert match_account("notacme.example", accounts) is None
    assert match_account(None, accounts) is None


def test_free_mail_never_matches_an_account() -> None:
    assert match_account("gmail.com", [account("A1", "gmail.com")]) is None


def test_account_match_prefers_same_crm_then_active_owner() -> None:
    accounts = AccountIndex([
        account("A9", "acme.example", owner_id="U2"),
        account("A1", "acme.example", owner_id="U1"),
        account("H1", "acme.example", owner_id="H7", connection="hubspot"),
    ])
    owners = owners_by_id([owner("U1", "liam.walsh", active=False), owner("U2", "emma.rossi"),
                           owner("H7", "emma.rossi", connection="hubspot")])
    assert match_account("acme.example", accounts, owners, "salesforce").ref.crm_id == "A9"  # type: ignore[union-attr]
    assert match_account("acme.example", accounts, owners, "hubspot").ref.crm_id == "H1"  # type: ignore[union-attr]
    # Without owners, the lowest reference wins: deterministic.
    assert match_account("acme.example", accounts, None, "salesforce").ref.crm_id == "A1"  # type: ignore[union-attr]


def test_owner_inactive_in_any_crm_counts_as_inactive() -> None:
    owners = [owner("U1", "liam.walsh"), owner("H1", "liam.walsh", active=False, connection="hubspot"),
              owner("U2", "emma.rossi")]
    assert active_owner_emails(owners) == {team("liam.walsh"): False, team("emma.rossi"): True}
