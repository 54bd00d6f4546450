"""person_key on messy, real-world CRM email values."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.core.identity import person_key


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("  Jane@Acme.com  ", "jane@acme.com"),
        ("jane@acme.com.", "jane@acme.com"),
        ("jane@acme.com;", "jane@acme.com"),
        ("jane@acme.com,", "jane@acme.com"),
        ("mailto:jane@acme.com", "jane@acme.com"),
        ('"Jane Doe" <jane@acme.com>', "jane@acme.com"),
        ("Jane Doe <Jane@ACME.com>", "jane@acme.com"),
        ("a@x.com; b@y.com", "a@x.com"),
        ("n/a; b@y.com", "b@y.com"),
        ("jane+crm@acme.com", "jane@acme.com"),
        ("J.Ane.Doe+x@GoogleMail.com", "janedoe@gmail.com"),
        ("jane.doe@outlook.com", "jane.doe@outlook.com"),
        ("jane-alias@yahoo.com", "jane-alias@yahoo.com"),
        ("jörg@bücher.de", None),
        ("joerg@bücher.de", "joerg@xn--bcher-kva.de"),
        ("joerg@xn--bcher-kva.de", "joerg@xn--bcher-kva.de"),
    ],
)
def test_messy_values_give_the_expected_key(raw: str, key: str | None) -> None:
    assert person_key(raw) == key


@pytest.mark.parametrize(
    "raw", ["n/a", "none", "-", "test", "noemail@", "@acme.com", "", "   ", "a@b", "<>"]
)
def test_placeholders_have_no_key(raw: str) -> None:
    assert person_key(raw) is None


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_never_raises_and_is_idempotent(raw: str) -> None:
    key = person_key(raw)
    if key is not None:
        assert person_key(key) == key


_LOCAL = st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True)


@settings(max_examples=100, deadline=None)
@given(_LOCAL, st.sampled_from(['"Jane Doe" <{}>', " {} ", "{};", "MAILTO:{}", "{}"]))
def test_case_whitespace_and_display_name_share_a_key(local: str, form: str) -> None:
    address = f"{local}@acme.com"
    assert person_key(form.format(address.upper())) == person_key(address)


@settings(max_examples=100, deadline=None)
@given(_LOCAL, _LOCAL)
def test_different_mailboxes_at_a_company_never_share_a_key(a: str, b: str) -> None:
    if a != b:
        assert person_key(f"{a}@acme.com") != person_key(f"{b}@acme.com")
