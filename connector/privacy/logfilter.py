"""Personal data and secrets kept out of Relay's logs.

:class:`PrivacyFilter` is a :class:`logging.Filter` that Relay installs on every handler it
configures (``relay``'s stderr handler, and through it ``relay serve``, ``relay worker`` and
uvicorn's loggers). It rewrites each record before any handler formats it: the formatted
message (template and arguments), the exception text and the stack text. What it masks:

* **Emails** keep the first letter of the local part and of the domain, and the top-level
  domain: ``jane.doe@acme.example`` -> ``j***@a***.example`` (also ``%40`` in URLs). Enough to
  tell a rep's address from a lead's in a log, not enough to find the person.
* **Phone numbers**: ``+`` and 7 to 15 digits (E.164, with or without separators), or 7 to 15
  digits with separators (spaces, dots, dashes, parentheses: ``(415) 555-0100``) ->
  ``[phone ..00]`` (the last two digits). Dates, times, decimals and IP addresses are not
  phones. A bare run of digits without ``+`` or separators is left alone: CRM record ids
  (HubSpot's) and epoch times are such runs; as the value of a phone field (below) it is masked.
* **Person names where Relay logs them as such**: the value of a name, phone or email field
  in a logged mapping or query string (``'firstname': 'Jane'``, ``"LastName": "Doe"``,
  ``last_name=Doe``) -> ``J***``; values the CRMs echo in their error messages and Relay's own
  field checks echo (``data value too large: <value> (max length=80)``, ``invalid email
  address: <value>``, ``Email address <value> is invalid``, ``'<value>' is not an email
  address``) -> ``[value withheld]``. A name in free text that no field names cannot be told
  from other words, and is not masked: Relay's own log lines never carry one.
* **Secrets**: ``Bearer`` tokens, Relay API tokens (``relay_...``), HubSpot private-app tokens
  (``pat-...``), Salesforce session ids (``00D...!...``), the values of ``access_token``,
  ``refresh_token``, ``client_secret``, ``password``, ``token``, ``api_key``, ``hapikey``,
  ``sessionId`` and ``Authorization`` (as ``key=value`` or JSON), the password of a URL
  (``postgresql://relay:***@db``), the secret part of a Slack webhook URL (``/services/T../B../***``),
  and the literal value of every environment variable named like a secret (``*_TOKEN``,
  ``*_SECRET``, ``*_PASSWORD``, ``*_API_KEY``, ``*_WEBHOOK_URL``...; 8 characters or more) -> ``***``.

Masking is idempotent: a masked text masks to itself.
"""

from __future__ import annotations

import copy
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

MASKED = "***"
WITHHELD = "[value withheld]"

_SECRET_ENV = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|PRIVATE_KEY|SESSION_?ID|CREDENTIALS?|WEBHOOK_URL)$",
                         re.IGNORECASE)
_MIN_LITERAL = 8
"""Shorter configured secrets (``sandbox``) are common words: matching them would mask ordinary text."""

_EMAIL = re.compile(
    r"(?<![\w.+%-])(?P<local>\w[\w.+-]*)(?:@|%40)(?P<domain>(?:[\w-]+\.)+(?P<tld>[A-Za-z]{2,63}|xn--[\w-]+))"
    r"(?![\w-])"
)
_PHONE = re.compile(r"(?<![\w+.:/%\\-])(?P<phone>\+?\(?\d[\d ().\u00a0-]{5,24}\d\)?)(?![\w-]|\.\d)")
_DATE_START = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{4}")
_DECIMAL = re.compile(r"\d+\.\d+")
_IPV4 = re.compile(r"\d{1,3}(\.\d{1,3}){3}")

_NAME_KEYS = (r"first[_ -]?name|last[_ -]?name|full[_ -]?name|given[_ -]?name|family[_ -]?name|surname|"
              r"contact[_ -]?name|lead[_ -]?name|person[_ -]?name")
_PHONE_KEYS = r"phone|mobile[_ -]?phone|mobile|phone[_ -]?number|telephone|fax|mobilephone"
_EMAIL_KEYS = r"e-?mail|email[_ -]?address|work[_ -]?email|propertyValue|invalidValue"
_SECRET_KEYS = (r"access[_-]?token|refresh[_-]?token|id[_-]?token|client[_-]?secret|password|passwd|secret|token|"
                r"api[_-]?key|apikey|hapikey|session[_-]?id|authorization|x-relay-token|x-hubspot-signature(?:-v3)?")

_QUOTED_VALUE = r"(?P<vq>['\"])(?P<value>(?:\\.|(?!(?P=vq)).)*)(?P=vq)"


def _keyed(keys: str, *, colon: bool = False) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """``'key': 'value'`` (a repr or JSON) and ``key=value`` (a query string, a log line) for these keys;
    ``colon``: also ``key: value`` (for secrets only: "Last Name: data value too large" is prose)."""
    quoted = re.compile(rf"(?P<head>(?P<kq>['\"])(?:{keys})(?P=kq)\s*:\s*){_QUOTED_VALUE}", re.IGNORECASE)
    separator = r"(?:=|:[ \t]*)" if colon else "="
    plain = re.compile(rf"(?P<head>(?<![\w.-])(?:{keys}){separator})(?P<value>[^&\s,;'\"<>)\]}}]+)",
                       re.IGNORECASE)
    return quoted, plain


_NAME_FIELDS = _keyed(_NAME_KEYS)
_PHONE_FIELDS = _keyed(_PHONE_KEYS)
_EMAIL_FIELDS = _keyed(_EMAIL_KEYS)
_SECRET_FIELDS = _keyed(_SECRET_KEYS)
_SECRET_PROSE = _keyed(r"access[_-]?token|refresh[_-]?token|client[_-]?secret|password|passwd|api[_-]?key|hapikey",
                       colon=True)
"""``client_secret: x`` too; not ``secret: ...`` or ``token: ...``, which Relay's own messages say in prose."""

_TOKENS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer|basic)\s+(?!\*\*\*)[A-Za-z0-9\-._~+/]+=*"), r"\1 " + MASKED),
    (re.compile(r"(?i)(authorization\s*:\s*)(?!(?:bearer|basic)\s)(?!\*\*\*)[^\s,;]+"), r"\1" + MASKED),
    (re.compile(r"\brelay_[A-Za-z0-9_-]{24,}"), "relay_" + MASKED),
    (re.compile(r"\bpat-[a-z]{2,4}\d?-[0-9A-Fa-f-]{8,}"), "pat-" + MASKED),
    (re.compile(r"\b00D[A-Za-z0-9]{12,15}![A-Za-z0-9._\-]{8,}"), "00D" + MASKED),
    (re.compile(r"(/services/T[A-Za-z0-9]+/B[A-Za-z0-9]+/)(?!\*\*\*)[A-Za-z0-9]+"), r"\1" + MASKED),
    (re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]+:)(?!\*\*\*@)[^\s/@]+@"), r"\g<head>" + MASKED + "@"),
)
_ECHOES: tuple[re.Pattern[str], ...] = (
    re.compile(r"(?P<head>data value too large: ).*?(?P<tail> \(max length=\d+\))", re.IGNORECASE | re.DOTALL),
    re.compile(r"(?P<head>invalid email address: )(?!\[value withheld\])\S+(?P<tail>)", re.IGNORECASE),
    re.compile(r"(?P<head>email address )(?!\[value withheld\])\S+(?P<tail> is invalid)", re.IGNORECASE),
    re.compile(r"(?P<head>)(?P<q>['\"])(?:\\.|(?!(?P=q)).)*(?P=q)(?P<tail> is not (?:an email address|a phone number))"),
)


def _mask_email(match: re.Match[str]) -> str:
    return f"{match['local'][0]}***@{match['domain'][0]}***.{match['tld']}"


def _is_phone(candidate: str) -> bool:
    digits = sum(ch.isdigit() for ch in candidate)
    if not 7 <= digits <= 15:
        return False
    body = candidate.lstrip("+(")
    if not candidate.startswith("+") and body.isdigit():
        return False  # a bare run of digits: an id, a count or a time, not a phone
    return not (_DATE_START.match(body) or _DECIMAL.fullmatch(body) or _IPV4.fullmatch(body))


def _mask_phone(match: re.Match[str]) -> str:
    candidate = match["phone"]
    if not _is_phone(candidate):
        return candidate
    digits = "".join(ch for ch in candidate if ch.isdigit())
    return f"[phone ..{digits[-2:]}]"


def _masked_already(value: str) -> bool:
    return MASKED in value or value.startswith("[")


def _initial(value: str) -> str:
    text = value.strip()
    if not text or _masked_already(text):
        return value
    return f"{text[0]}{MASKED}"


def configured_secrets(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """The values of environment variables named like a secret (8 characters or more)."""
    env = os.environ if environ is None else environ
    return frozenset(value for name, value in env.items()
                     if _SECRET_ENV.search(name) and value and len(value.strip()) >= _MIN_LITERAL)


class Masker:
    """Masks personal data and secrets in text (see the module's documentation)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        literals = sorted({s.strip() for s in secrets if s and len(s.strip()) >= _MIN_LITERAL}, key=len, reverse=True)
        self._literals = re.compile("|".join(map(re.escape, literals))) if literals else None

    def __call__(self, text: str) -> str:
        return self.mask(text)

    def mask(self, text: str) -> str:
        """``text`` with every personal value and secret it holds masked."""
        if not text:
            return text
        if self._literals is not None:
            text = self._literals.sub(MASKED, text)
        for pattern, replacement in _TOKENS:
            text = pattern.sub(replacement, text)
        text = _sub_fields(_SECRET_FIELDS, text, _mask_secret_value)
        text = _sub_fields(_SECRET_PROSE, text, _mask_secret_value)
        for echo in _ECHOES:
            text = echo.sub(lambda m: f"{m['head']}{WITHHELD}{m['tail']}", text)
        text = _sub_fields(_NAME_FIELDS, text, _initial)
        text = _sub_fields(_PHONE_FIELDS, text, lambda value: _mask_phone_value(value))
        text = _sub_fields(_EMAIL_FIELDS, text, _mask_email_value)
        text = _EMAIL.sub(_mask_email, text)
        return _PHONE.sub(_mask_phone, text)


def _mask_secret_value(value: str) -> str:
    if _masked_already(value) or value.lower() in ("bearer", "basic"):  # the scheme: its token is masked apart
        return value
    return MASKED


def _mask_email_value(value: str) -> str:
    if _masked_already(value):
        return value
    return _EMAIL.sub(_mask_email, value) if _EMAIL.search(value) else _initial(value)


def _mask_phone_value(value: str) -> str:
    digits = "".join(ch for ch in value if ch.isdigit())
    if not digits or _masked_already(value):
        return value
    return f"[phone ..{digits[-2:]}]"


def _sub_fields(patterns: tuple[re.Pattern[str], re.Pattern[str]], text: str, mask: Callable[[str], str]) -> str:
    quoted, plain = patterns

    def quoted_value(match: re.Match[str]) -> str:
        value = match["value"]
        return f"{match['head']}{match['vq']}{mask(value) if value else value}{match['vq']}"

    def plain_value(match: re.Match[str]) -> str:
        return f"{match['head']}{mask(match['value'])}"

    return plain.sub(plain_value, quoted.sub(quoted_value, text))


class _Shown:
    """An argument of a log record, shown masked whether the template says ``%s`` or ``%r``."""

    __slots__ = ("_repr", "_str")

    def __init__(self, as_str: str, as_repr: str) -> None:
        self._str, self._repr = as_str, as_repr

    def __str__(self) -> str:
        return self._str

    def __repr__(self) -> str:
        return self._repr


_PLAIN = (int, float, bool, type(None))
WITHHELD_RECORD = "[log record withheld: it could not be masked]"


class PrivacyFilter(logging.Filter):
    """Masks personal data and secrets in every record that passes (see the module); never drops one.

    The record is rewritten in place, before any handler formats it: its message (template and
    arguments), its exception text and its stack text. A record another ``PrivacyFilter``
    already masked passes as it is.

    Args:
        name: As :class:`logging.Filter` (empty: every record).
        secrets: Literal secrets to mask; default :func:`configured_secrets` (the environment).
    """

    def __init__(self, name: str = "", *, secrets: Iterable[str] | None = None) -> None:
        super().__init__(name)
        self.masker = Masker(configured_secrets() if secrets is None else secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if not super().filter(record) or getattr(record, "relay_masked", False):
            return True
        try:
            self._mask(record)
        except Exception:  # never let a record through unmasked, nor break the caller's logging
            record.msg, record.args = WITHHELD_RECORD, None
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        record.relay_masked = True
        return True

    def _mask(self, record: logging.LogRecord) -> None:
        mask = self.masker.mask
        template = record.msg if isinstance(record.msg, str) else str(record.msg)
        args = record.args
        if args:
            masked_args = self._masked_args(args)
            masked_template = mask(template)
            try:
                shown: str | None = masked_template % masked_args
            except Exception:
                shown = None
            if shown is not None and mask(shown) == shown:
                record.msg, record.args = masked_template, masked_args
            else:  # a value only the whole message shows (or a template that does not fit its arguments)
                try:
                    whole = template % args
                except Exception:
                    whole = f"{template} {args!r}"
                record.msg, record.args = mask(whole), None
        else:
            record.msg = mask(template)
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        record.exc_info = None  # a formatter would format it again, unmasked; exc_text is what it shows
        if record.stack_info:
            record.stack_info = mask(record.stack_info)

    def _masked_args(self, args: Any) -> Any:
        if isinstance(args, Mapping):
            return {key: self._masked_arg(value) for key, value in args.items()}
        return tuple(self._masked_arg(value) for value in args)

    def _masked_arg(self, value: Any) -> Any:
        if isinstance(value, _PLAIN):
            return value
        if isinstance(value, str):
            return self.masker.mask(value)
        as_str, as_repr = str(value), repr(value)
        masked_str, masked_repr = self.masker.mask(as_str), self.masker.mask(as_repr)
        if masked_str == as_str and masked_repr == as_repr:
            return value
        return _Shown(masked_str, masked_repr)


def has_privacy_filter(filterer: logging.Filterer) -> bool:
    """Whether a handler or logger has a :class:`PrivacyFilter`."""
    return any(isinstance(f, PrivacyFilter) for f in filterer.filters)


def install(handler: logging.Handler, *, secrets: Iterable[str] | None = None) -> logging.Handler:
    """Put a :class:`PrivacyFilter` on ``handler`` (once); returns the handler."""
    if not has_privacy_filter(handler):
        handler.addFilter(PrivacyFilter(secrets=secrets))
    return handler


UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
"""The loggers uvicorn logs to (its default configuration gives them handlers of their own that do not propagate)."""


def install_on_uvicorn(*, secrets: Iterable[str] | None = None) -> None:
    """Put a :class:`PrivacyFilter` on uvicorn's loggers themselves.

    A logger's filters outlive ``logging.config.dictConfig`` (which replaces its handlers), so
    whatever handlers a uvicorn server configures for them later (``relay serve``, the sandbox
    servers of ``relay demo``), their records are masked before any handler sees them.
    """
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        if not has_privacy_filter(logger):
            logger.addFilter(PrivacyFilter(secrets=secrets))


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's ``log_config`` for ``relay serve``: its loggers keep no handler of their own and propagate
    to Relay's handler on the root logger (masked, in Relay's format)."""
    return copy.deepcopy({
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {
            "uvicorn": {"handlers": [], "level": "INFO", "propagate": True},
            "uvicorn.error": {"handlers": [], "level": "INFO", "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "INFO", "propagate": True},
        },
    })


__all__ = ["MASKED", "UVICORN_LOGGERS", "WITHHELD", "Masker", "PrivacyFilter", "configured_secrets",
           "has_privacy_filter", "install", "install_on_uvicorn", "uvicorn_log_config"]
