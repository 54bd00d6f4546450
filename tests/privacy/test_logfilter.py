"""The masking of personal data and secrets in log records (connector/privacy/logfilter.py)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from connector.privacy.logfilter import (
    WITHHELD,
    Masker,
    PrivacyFilter,
    install,
    install_on_uvicorn,
    uvicorn_log_config,
)

mask = Masker(["literal-secret-from-env-9f2c"])


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("lead ada.lovelace@analytical.example routed", "lead a***@a***.example routed"),
        ("to Bob@Mail.Acme.co.uk.", "to B***@M***.uk."),
        ("GET /search?email=ada%40analytical.example&limit=1", "GET /search?email=a***@a***.example&limit=1"),
        ("<ada@analytical.example>", "<a***@a***.example>"),
        ("José.Núñez@correo.example", "J***@c***.example"),
    ],
)
def test_emails_keep_the_first_letters_and_the_top_level_domain(text: str, shown: str) -> None:
    assert mask(text) == shown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("call +44 20 7946 0958 now", "call [phone ..58] now"),
        ("E.164 +14155550100", "E.164 [phone ..00]"),
        ("us (415) 555-0100", "us [phone ..00]"),
        ("dotted 415.555.0199", "dotted [phone ..99]"),
        ("dashed 030-1234567", "dashed [phone ..67]"),
        ("spaced 0612 345 678", "spaced [phone ..78]"),
    ],
)
def test_phone_numbers_keep_their_last_two_digits(text: str, shown: str) -> None:
    assert mask(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "hubspot contact 75480107 merged into 51234567890",  # HubSpot ids: bare digits
        "occurredAt 1796641832508",  # epoch milliseconds
        "at 2026-12-07 11:10:27,511 and 2026-12-07T12:10:32.771268+00:00",
        "due 12/07/2026, took 1234567.89 s",
        "from 192.168.100.200",
        "Salesforce 0055e0000000006AAA, relay id 1369039c-acc3-58c4-bddc-79d6b44a204e",
        "score 10.6 (first_name +4.5; phone +0.5), 13 API calls {'auth': 1, 'read': 3}",
        "records read User 24, Account 58, Lead 500, Contact 166",
    ],
)
def test_ids_dates_times_counts_and_addresses_are_not_phones(text: str) -> None:
    assert mask(text) == text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("{'firstname': 'Zebulon', 'lastname': 'Quixote', 'company': 'Acme'}",
         "{'firstname': 'Z***', 'lastname': 'Q***', 'company': 'Acme'}"),
        ('{"FirstName": "Zebulon", "LastName":"Quixote"}', '{"FirstName": "Z***", "LastName":"Q***"}'),
        ("first_name=Zebulon&last_name=Quixote&utm_source=ads", "first_name=Z***&last_name=Q***&utm_source=ads"),
        ("{'phone': '5551234567'}", "{'phone': '[phone ..67]'}"),  # a bare run, but a phone field's value
        ("{'email': 'not-an-address'}", "{'email': 'n***'}"),
        ('{"propertyName": "email", "propertyValue": "ada@analytical"}',
         '{"propertyName": "email", "propertyValue": "a***"}'),
    ],
)
def test_values_of_name_phone_and_email_fields_are_masked(text: str, shown: str) -> None:
    assert mask(text) == shown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Last Name: data value too large: Quixote Longname Lo(truncated) (max length=80) [fields: LastName]",
         f"Last Name: data value too large: {WITHHELD} (max length=80) [fields: LastName]"),
        ("Email: invalid email address: ada@@analytical", f"Email: invalid email address: {WITHHELD}"),
        ("Email address ada.lovelace@analytical is invalid", f"Email address {WITHHELD} is invalid"),
        ("email: 'ada@@x' is not an email address; phone: '12 34 x' is not a phone number",
         f"email: {WITHHELD} is not an email address; phone: {WITHHELD} is not a phone number"),
    ],
)
def test_values_the_crms_and_relays_checks_echo_are_withheld(text: str, shown: str) -> None:
    assert mask(text) == shown


TOKEN = "relay_" + "Zx9-_" * 9


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Authorization: Bearer abc.DEF-123_x~", "Authorization: Bearer ***"),
        ('{"Authorization": "Bearer abc"}', '{"Authorization": "Bearer ***"}'),
        (f"api token {TOKEN} used", "api token relay_*** used"),
        ("HUBSPOT pat-na1-7c0ffee0-1234-4abc-9def-0123456789ab", "HUBSPOT pat-***"),
        ("session 00D5e0000000001!AQx7_-Yq2abcdefghijkl", "session 00D***"),
        ("POST /token grant_type=x&client_secret=s3cr3t&refresh_token=5Aep861", "POST /token grant_type=x&client_secret=***&refresh_token=***"),
        ('{"access_token": "eyJhbGci", "instance_url": "https://x"}', '{"access_token": "***", "instance_url": "https://x"}'),
        ("outbound /webhooks/salesforce?token=abc123", "outbound /webhooks/salesforce?token=***"),
        ("postgresql+psycopg://relay:hunter22@db:5432/relay", "postgresql+psycopg://relay:***@db:5432/relay"),
        ("configured literal-secret-from-env-9f2c leaked", "configured *** leaked"),
        ('HTTP Request: POST https://hooks.slack.com/services/T0001/B0002/XyZsecret123 "HTTP/1.1 200 OK"',
         'HTTP Request: POST https://hooks.slack.com/services/T0001/B0002/*** "HTTP/1.1 200 OK"'),
    ],
)
def test_tokens_and_secrets_are_redacted(text: str, shown: str) -> None:
    assert mask(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "mail ada.lovelace@analytical.example, phone +44 20 7946 0958, {'lastname': 'Quixote'}",
        "Bearer abc and relay_" + "a" * 40 + " and 00D5e0000000001!AQxyzxyzxyzxyz",
        "Last Name: data value too large: Quixote (max length=80)",
        "email=ada%40analytical.example&first_name=Ada",
    ],
)
def test_masking_is_idempotent(text: str) -> None:
    once = mask(text)
    assert once != text
    assert mask(once) == once


def test_secrets_come_from_the_environment_by_variable_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_CRM_TOKEN", "tok-0123456789-env")
    monkeypatch.setenv("RELAY_SMTP_PASSWORD", "smtp-pass-0042")
    monkeypatch.setenv("SHORT_SECRET", "sandbox")  # a common word: never masked as a literal
    monkeypatch.setenv("RELAY_LOG_LEVEL", "DEBUG-not-a-secret-42")
    monkeypatch.setenv("RELAY_SLACK_WEBHOOK_URL", "https://chat.example/hook/abc123")
    masked = PrivacyFilter().masker.mask("tok-0123456789-env smtp-pass-0042 sandbox DEBUG-not-a-secret-42 "
                                         "POST https://chat.example/hook/abc123")
    assert masked == "*** *** sandbox DEBUG-not-a-secret-42 POST ***"


# ------------------------------------------------------------------------------------------ the filter


@pytest.fixture()
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    out = io.StringIO()
    handler = install(logging.StreamHandler(out), secrets=[])
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("tests.privacy.logged")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield logger, out
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def test_the_filter_masks_template_and_arguments_and_keeps_the_format(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = logged
    logger.info("lead %s (%r) phone %s: %d events, %.1f s", "ada@analytical.example", {"lastname": "Quixote"},
                "+44 20 7946 0958", 3, 1.25)
    assert out.getvalue() == ("INFO tests.privacy.logged: lead a***@a***.example ({'lastname': 'Q***'}) "
                              "phone [phone ..58]: 3 events, 1.2 s\n")


def test_a_value_only_the_whole_message_shows_is_masked(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = logged
    logger.warning("address %s@%s", "ada.lovelace", "analytical.example")
    assert "ada.lovelace" not in out.getvalue()
    assert "a***@a***.example" in out.getvalue()


def test_exception_text_is_masked(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = logged
    try:
        raise ValueError("Email address ada.lovelace@analytical.example is invalid; Bearer tok3n-xyz")
    except ValueError:
        logger.exception("write failed for %s", "+14155550100")
    text = out.getvalue()
    assert "Traceback" in text and "ValueError" in text
    for secret in ("ada.lovelace", "analytical.example is", "tok3n-xyz", "4155550100"):
        assert secret not in text


def test_a_message_that_is_not_a_string_and_a_template_that_does_not_fit_are_masked(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = logged
    logger.error(ValueError("ada@analytical.example"))
    logger.error("two %s %s", "ada@analytical.example")  # one argument short
    text = out.getvalue()
    assert "ada@" not in text
    assert text.count("a***@a***.example") == 2


def test_the_filter_never_drops_a_record(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = logged

    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no")

        __repr__ = __str__

    logger.info("value %s", Hostile())
    assert "withheld" in out.getvalue()


def test_uvicorns_loggers_are_masked_whatever_handlers_a_server_gives_them() -> None:
    import logging.config

    install_on_uvicorn(secrets=[])
    out = io.StringIO()
    logging.config.dictConfig({  # what a uvicorn server (crm_sandbox's) configures at each start
        "version": 1, "disable_existing_loggers": False,
        "handlers": {"own": {"class": "logging.StreamHandler", "stream": out}},
        "loggers": {"uvicorn.error": {"handlers": ["own"], "level": "INFO", "propagate": False}},
    })
    try:
        logging.getLogger("uvicorn.error").error("Exception in ASGI application: %s", "ada@analytical.example")
        assert "a***@a***.example" in out.getvalue() and "ada@" not in out.getvalue()
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False,
                                   "loggers": {"uvicorn.error": {"handlers": [], "propagate": True}}})


def test_relay_serve_sends_uvicorns_loggers_to_relays_handler() -> None:
    config = uvicorn_log_config()
    assert config["disable_existing_loggers"] is False
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        assert config["loggers"][name]["handlers"] == []
        assert config["loggers"][name]["propagate"] is True
