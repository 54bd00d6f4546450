"""Hygiene: normalised values, findings instead of exceptions, idempotence."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from connector.core._email import clean_email, email_domain, is_valid_email
from connector.core.hygiene import clean_person
from connector.core.models import Person

from .helpers import lead, ref


def codes(person: Person) -> dict[str, str]:
    return {f.field: f.code for f in clean_person(person).findings}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Jane.Doe@ACME.example ", "jane.doe@acme.example"),  # dots kept
        ("mailto:bob@acme.example", "bob@acme.example"),
        ("<bob+news@acme.example>", "bob+news@acme.example"),
    ],
)
def test_email_is_trimmed_and_lowercased(raw: str, expected: str) -> None:
    result = clean_person(lead(email=raw))
    assert result.person.email == expected
    assert result.changes["email"] == expected
    assert result.email_domain == "acme.example"


@pytest.mark.parametrize("raw", ["jane@", "@acme.example", "jane@@acme.example", "jane acme.example",
                                 "jane@acme", "jane@acme..example", "jane@-acme.example"])
def test_invalid_email_is_a_finding_and_value_kept(raw: str) -> None:
    result = clean_person(lead(email=raw))
    assert codes(lead(email=raw))["email"] == "invalid_email"
    assert result.person.email == raw.strip().lower()
    assert result.email_domain is None


@pytest.mark.parametrize(
    ("domain", "free"),
    [("gmail.com", True), ("yahoo.com", True), ("hotmail.com", True), ("outlook.com", True),
     ("icloud.com", True), ("aol.com", True), ("proton.me", True), ("gmx.de", True),
     ("web.de", True), ("mail.ru", True), ("yandex.ru", True), ("qq.com", True),
     ("163.com", True), ("acme.example", False), ("northwind.example", False)],
)
def test_free_mail_detection(domain: str, free: bool) -> None:
    assert clean_person(lead(email=f"someone@{domain}")).free_mail is free


@pytest.mark.parametrize(
    ("phone", "country", "expected"),
    [
        ("(415) 555-2671", "US", "+14155552671"),
        ("415.555.2671", "United States", "+14155552671"),
        ("030 901820", "Deutschland", "+4930901820"),
        ("+44 20 7946 0958", None, "+442079460958"),  # international format needs no country
        ("020 7946 0958", "UK", "+442079460958"),
        ("+14155552671", "US", "+14155552671"),
    ],
)
def test_phone_to_e164_using_the_record_country(phone: str, country: str | None,
                                                expected: str) -> None:
    result = clean_person(lead(phone=phone, country=country))
    assert result.person.phone == expected
    assert "phone" not in codes(lead(phone=phone, country=country))


@pytest.mark.parametrize(("phone", "country"), [("555-0000", "US"), ("12", "DE"),
                                                ("call me maybe", "US"), ("415 555 2671", None)])
def test_invalid_phone_is_a_finding_and_value_kept(phone: str, country: str | None) -> None:
    person = lead(phone=phone, country=country)
    result = clean_person(person)
    assert codes(person)["phone"] == "invalid_phone"
    assert result.person.phone == phone


@pytest.mark.parametrize(
    ("country", "expected"),
    [("United States", "US"), ("USA", "US"), ("U.S.", "US"), ("u.s.a.", "US"), ("us", "US"),
     ("Deutschland", "DE"), ("Germany", "DE"), ("DEU", "DE"), ("UK", "GB"), ("England", "GB"),
     ("United Kingdom", "GB"), ("The Netherlands", "NL"), ("Holland", "NL"), ("South Korea", "KR"),
     ("Korea", "KR"), ("Japan", "JP"), ("Schweiz", "CH"), ("CA", "CA"), ("Canada", "CA")],
)
def test_country_to_iso_alpha2(country: str, expected: str) -> None:
    assert clean_person(lead(country=country)).person.country == expected


def test_unknown_country_is_a_finding() -> None:
    person = lead(country="Narnia")
    assert codes(person)["country"] == "unknown_country"
    assert clean_person(person).person.country == "Narnia"


@pytest.mark.parametrize(
    ("state", "country", "expected"),
    [("California", "US", "CA"), ("ca", "USA", "CA"), ("US-NY", "US", "NY"),
     ("Washington DC", "US", "DC"), ("Ontario", "Canada", "ON"), ("Québec", "CA", "QC"),
     ("New South Wales", "Australia", "NSW"), ("vic", "AU", "VIC"),
     ("Bavaria", "DE", "Bavaria")],  # only US/CA/AU states become codes
)
def test_state_to_subdivision_code(state: str, country: str, expected: str) -> None:
    assert clean_person(lead(state=state, country=country)).person.state == expected


def test_unknown_us_state_is_a_finding() -> None:
    person = lead(state="Gondor", country="US")
    assert codes(person)["state"] == "unknown_state"


@pytest.mark.parametrize(
    ("company", "clean", "key"),
    [
        ("ACME WIDGETS INC", "Acme Widgets Inc", "acme widgets"),
        ("  Acme,   Inc. ", "Acme, Inc.", "acme"),
        ("globex gmbh", "Globex GmbH", "globex"),
        ("IBM", "IBM", "ibm"),  # short all-caps words are acronyms
        ("Initech LLC", "Initech LLC", "initech"),
        ("Umbrella Corp.", "Umbrella Corp.", "umbrella"),
        ("Tyrell Co Ltd", "Tyrell Co Ltd", "tyrell"),
        ("McKinsey & Company", "McKinsey & Company", "mckinsey &"),
        ("Stark Industries PLC", "Stark Industries PLC", "stark industries"),
        ("Philips N.V.", "Philips N.V.", "philips n v"),
    ],
)
def test_company_cleaning_and_key(company: str, clean: str, key: str) -> None:
    result = clean_person(lead(company=company))
    assert result.person.company == clean
    assert result.company_key == key


@pytest.mark.parametrize(
    ("title", "seniority", "function"),
    [
        ("Chief Executive Officer", "c_level", "executive"),
        ("CFO", "c_level", "finance"),
        ("Co-Founder & CTO", "c_level", "executive"),
        ("VP of Sales", "vp", "sales"),
        ("Senior Vice President, Marketing", "vp", "marketing"),
        ("Executive Vice President, Finance", "vp", "finance"),
        ("Director of Engineering", "director", "engineering"),
        ("Head of Revenue Operations", "director", "operations"),
        ("IT Manager", "manager", "it"),
        ("Sales Team Lead", "manager", "sales"),
        ("Senior Software Engineer", "individual", "engineering"),
        ("HR Business Partner", "individual", "hr"),
        ("Account Executive", "individual", "sales"),
        ("Assistant to the CEO", "individual", "executive"),
        ("Barista", "individual", "other"),
        (None, "unknown", "other"),
    ],
)
def test_title_to_seniority_and_function(title: str | None, seniority: str, function: str) -> None:
    result = clean_person(lead(title=title))
    assert (result.seniority, result.function) == (seniority, function)


def test_missing_required_fields_are_findings_not_exceptions() -> None:
    person = Person(kind="lead", ref=ref(9), first_name=" ", email=None, company="Acme")
    result = clean_person(person)
    missing = sorted(f.field for f in result.findings if f.code == "missing_required")
    assert missing == ["email", "first_name", "last_name"]
    assert all(f.ref == person.ref for f in result.findings)


def test_names_casing_fixed_and_changes_only_list_differences() -> None:
    person = lead(first_name="JANE", last_name="van der berg", country="US", company="Acme")
    result = clean_person(person)
    assert result.person.first_name == "Jane"
    assert result.person.last_name == "Van Der Berg"
    assert set(result.changes) == {"first_name", "last_name"}


def test_negative_counts_are_findings() -> None:
    assert codes(lead(page_views=-3))["page_views"] == "negative_value"


# ---------------------------------------------------------------- properties

text = st.one_of(st.none(), st.text(max_size=40))
messy = st.sampled_from([
    "  ACME  WIDGETS  INC ", "acme corp.", "IBM", "Dr. Jane", "O'REILLY", "  ", "", "élan sarl",
    "United States", "usa", "Deutschland", "Narnia", "California", "ca", "nsw",
    "(415) 555-2671", "+44 20 7946 0958", "12", "Jane.Doe@GMAIL.com", "x@y", "VP Sales",
    "mailto: <MAILTO:Bob@Acme.example>", "<<a@b.co>>", "ÉCOLE 1ABCD", "İSTANBUL LTD.",
])


@settings(max_examples=200, deadline=None)
@given(
    first=st.one_of(text, messy), last=st.one_of(text, messy), email=st.one_of(text, messy),
    phone=st.one_of(text, messy), company=st.one_of(text, messy), title=st.one_of(text, messy),
    country=st.one_of(text, messy), state=st.one_of(text, messy), city=st.one_of(text, messy),
)
def test_hygiene_is_idempotent(first: str | None, last: str | None, email: str | None,
                               phone: str | None, company: str | None, title: str | None,
                               country: str | None, state: str | None, city: str | None) -> None:
    person = Person(kind="lead", ref=ref(1), first_name=first, last_name=last, email=email,
                    phone=phone, company=company, title=title, country=country, state=state,
                    city=city)
    once = clean_person(person)
    twice = clean_person(once.person)
    assert twice.person == once.person
    assert twice.changes == {}
    assert [(f.field, f.code) for f in twice.findings] == [(f.field, f.code) for f in once.findings]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_email_normalisation_never_raises(raw: str) -> None:
    cleaned = clean_email(raw)
    assert cleaned == clean_email(cleaned)
    domain = email_domain(raw)
    if domain is not None:
        assert is_valid_email(cleaned)
        assert domain == cleaned.split("@")[1]


# ------------------------------------------------------------------ phones: digits key == phonenumbers

COUNTRIES = st.sampled_from([None, "", "US", "CA", "GB", "DE", "FR", "NL", "JP", "IN", "AU", "BR", "IT", "AR",
                             "MX", "RU", "CN", "SG", "IE", "ZA", "XK", "ZZ", "us"])


@st.composite
def typed_numbers(draw: st.DrawFn) -> str:
    """A number as people type it: digits (real prefixes often) with ``().-`` and spaces around."""
    head = draw(st.sampled_from(["", "+", "+1", "+44", "+49", "+33", "+81", "+91", "+39", "+54", "+7", "00",
                                 "011", "0", "1", "+0", "+999", "+800", "8", "+44 (0)", "(0)"]))
    digits = draw(st.text(alphabet="0123456789", min_size=0, max_size=16))
    out = head
    for ch in digits:
        out += draw(st.sampled_from(["", "", "", " ", "-", ".", "(", ")", " (", ") ", "  "])) + ch
    return out + draw(st.sampled_from(["", "", ")", " ", ".", "-"]))


PHONE_TEXT = st.one_of(
    typed_numbers(),
    st.text(alphabet="0123456789+ ().-", max_size=22),
    st.text(alphabet="0123456789+ ().-x#,;/~extEXT:=", max_size=24),
    st.text(max_size=16),
)


@settings(max_examples=1500, deadline=None)
@given(raw=PHONE_TEXT, country=COUNTRIES)
def test_phone_digits_key_gives_what_phonenumbers_gives(raw: str, country: str | None) -> None:
    """The digits-key path of ``normalise_phone`` is exact: same E.164 and validity as phonenumbers."""
    from connector.core._phone import digits_key, normalise_phone, parse_phone

    expected = parse_phone(raw, country)
    assert normalise_phone(raw, country) == expected
    key = digits_key(raw)
    if key is not None:
        assert parse_phone(key, country) == expected


@pytest.mark.parametrize(("raw", "country"), [
    ("(416) 555-0149", "CA"), ("416.555.0149", "CA"), ("+1 (416) 555-0149", None), ("+44 (0) 20 7946 0396", "GB"),
    ("0044 20 7946 0585", "GB"), ("0081 51 2684 9108", "JP"), ("+815167643666", "JP"), ("+34790879063", "ES"),
    ("060 6990 67117", "BR"), ("+31-483584048", "NL"), ("12", "DE"), ("1 2", "DE"), ("+0 123 456", None),
    ("(0) 30 1234 5678", "DE"), ("030 1234 5678", "DE"), ("+39 06 698 1234", None), ("1-800-555-0199", "US"),
])
def test_phone_digits_key_on_typical_numbers(raw: str, country: str | None) -> None:
    from connector.core._phone import normalise_phone, parse_phone

    assert normalise_phone(raw, country) == parse_phone(raw, country)


@st.composite
def international_numbers(draw: st.DrawFn) -> str:
    """``+`` and digits: known and unknown calling codes, national prefixes kept in, leading zeros."""
    code = draw(st.sampled_from(["", "0", "1", "7", "20", "33", "39", "44", "49", "52", "54", "55", "61", "81",
                                 "86", "91", "225", "262", "290", "352", "376", "800", "808", "870", "878",
                                 "881", "882", "883", "888", "979", "999", "28", "42"]))
    middle = draw(st.sampled_from(["", "", "0", "00", "9", "8", "1", "15", "0 "]))
    digits = draw(st.text(alphabet="0123456789", min_size=0, max_size=15))
    return f"+{code}{middle}{digits}"


@settings(max_examples=2000, deadline=None)
@example(raw="+006903000", country="GB")  # a number the dropped re-creation of parse read differently
@given(raw=international_numbers(), country=COUNTRIES)
def test_international_numbers_give_what_phonenumbers_gives(raw: str, country: str | None) -> None:
    """``+digits`` (known and unknown calling codes) give what phonenumbers gives, in every region."""
    from connector.core._phone import normalise_phone, parse_phone

    assert normalise_phone(raw, country) == parse_phone(raw, country)


def test_every_example_number_of_every_region_gives_what_phonenumbers_gives() -> None:
    """Valid numbers of every region and type (phonenumbers' own examples), as typed in many ways."""
    import phonenumbers

    from connector.core._phone import normalise_phone, parse_phone

    checked = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in range(12):  # every PhoneNumberType but UNKNOWN
            number = phonenumbers.example_number_for_type(region, kind)
            if number is None:
                continue
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
            international = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
            prefix = phonenumbers.PhoneMetadata.metadata_for_region(region).national_prefix or "0"
            code = str(number.country_code)
            typed = [e164, international, national, e164[:-1], e164 + "1", f"+{code}{prefix}{e164[1 + len(code):]}",
                     f"+{code} ({prefix}) {e164[1 + len(code):]}", e164[1:], "00" + e164[1:]]
            for raw in typed:
                for country in (region, None, "US", "GB"):
                    assert normalise_phone(raw, country) == parse_phone(raw, country), (raw, country)
                    checked += 1
    assert checked > 10_000


@st.composite
def national_numbers(draw: st.DrawFn) -> tuple[str, str | None]:
    """Digits without ``+`` read in a region: dialling prefixes, the region's own code, trunk prefixes."""
    import phonenumbers

    region = draw(st.one_of(st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS)),
                            st.sampled_from([None, "", "us", "ZZ", "001", "XX"])))
    head = draw(st.sampled_from(["", "0", "00", "011", "0011", "810", "8", "1", "44", "49", "39", "7", "9",
                                 "15", "0 0"]))
    digits = draw(st.text(alphabet="0123456789", min_size=1, max_size=14))
    return f"{head}{digits}", region


@settings(max_examples=2000, deadline=None)
@given(typed=national_numbers())
def test_national_numbers_give_what_phonenumbers_gives(typed: tuple[str, str | None]) -> None:
    from connector.core._phone import normalise_phone, parse_phone

    raw, country = typed
    assert normalise_phone(raw, country) == parse_phone(raw, country)
