"""Relay's Salesforce id check agrees with the sandbox's id generator (written apart) on every id."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.crms.salesforce.soql import is_salesforce_id
from crm_sandbox.ids import checksum

ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@settings(max_examples=500, deadline=None)
@given(id15=st.text(alphabet=ALNUM, min_size=15, max_size=15), suffix=st.text(alphabet=ALNUM, min_size=3, max_size=3))
def test_an_18_character_id_is_one_when_its_suffix_is_the_checksum(id15: str, suffix: str) -> None:
    assert is_salesforce_id(id15)
    assert is_salesforce_id(id15 + checksum(id15))
    assert is_salesforce_id(id15 + suffix) == (suffix.upper() == checksum(id15))


@given(value=st.text(max_size=20))
def test_anything_else_is_not_an_id(value: str) -> None:
    if len(value) not in (15, 18) or not all(ch in ALNUM for ch in value):
        assert not is_salesforce_id(value)
