"""A person a web form or a list brings in (a *submission*): its fields read, checked and kept.

``POST /capture/form/{source}`` and ``relay import`` read what they are given with
:func:`read_fields`: names are matched case- and space-insensitively with common variants
("E-mail", "First Name", "Job Title"), every value is checked, and every problem names the
field. A :class:`Submission` is what the inbox keeps (``provider = "capture"``): the person's
fields, the UTM parameters, the consent given, when and from where it came. Its key in the
inbox is the source and the id the client sent, or a hash of its fields, so a repeated
submission stores nothing new.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from connector.core._email import clean_email, is_valid_email

CAPTURE_PROVIDER = "capture"
"""The inbox provider of submissions."""

PERSON_FIELDS: tuple[str, ...] = ("first_name", "last_name", "company", "title", "phone", "country")
"""The person's own fields besides the email (canonical names, written through the mapping)."""
UTM_FIELDS: tuple[str, ...] = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
PREFERENCE_FLAGS: tuple[str, ...] = ("email_opt_out", "do_not_call")
"""The person's own opt-outs (yes/no): canonical consent fields, written where the CRM keeps them (consent.yaml)."""
PREFERENCE_FIELDS: tuple[str, ...] = (*PREFERENCE_FLAGS, "legal_basis")
"""Consent fields of the person the CRM keeps: the opt-outs and the lawful basis (HubSpot ``hs_legal_basis``)."""
FIELDS: tuple[str, ...] = ("email", *PERSON_FIELDS, *UTM_FIELDS, "consent", "consent_text", "consent_version",
                           *PREFERENCE_FIELDS, "submission_id", "submitted_at")
"""Every field a submission may carry, by its canonical name."""

_MAX_LENGTH = {"first_name": 80, "last_name": 80, "company": 255, "title": 128, "phone": 40, "country": 80,
               **{name: 255 for name in UTM_FIELDS}, "consent_text": 2_000, "consent_version": 50,
               "legal_basis": 255}
_ALIASES: dict[str, str] = {
    **{alias: "email" for alias in ("email", "emailaddress", "mail", "workemail", "businessemail")},
    **{alias: "first_name" for alias in ("firstname", "first", "givenname", "forename")},
    **{alias: "last_name" for alias in ("lastname", "last", "surname", "familyname")},
    **{alias: "company" for alias in ("company", "companyname", "organization", "organisation", "account",
                                      "accountname", "employer")},
    **{alias: "title" for alias in ("title", "jobtitle", "position", "role")},
    **{alias: "phone" for alias in ("phone", "phonenumber", "telephone", "tel", "mobile", "mobilephone",
                                    "mobilenumber")},
    **{alias: "country" for alias in ("country", "countryregion", "countrycode", "countryname")},
    **{name.replace("_", ""): name for name in UTM_FIELDS},
    **{alias: "consent" for alias in ("consent", "consentpurposes", "purposes", "consentgiven")},
    "consenttext": "consent_text", "consentversion": "consent_version",
    **{alias: "email_opt_out" for alias in ("emailoptout", "optout", "optedout", "hasoptedoutofemail",
                                            "hsemailoptout", "unsubscribe", "unsubscribed")},
    **{alias: "do_not_call" for alias in ("donotcall", "nocalls", "dnc")},
    **{alias: "legal_basis" for alias in ("legalbasis", "lawfulbasis", "hslegalbasis")},
    "submissionid": "submission_id",
    **{alias: "submitted_at" for alias in ("submittedat", "timestamp", "submittedon", "submissiondate")},
}
_SEPARATORS = re.compile(r"[\s_.\-]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_PHONE = re.compile(r"^\+?[0-9 ()./\-]+((ext\.?|x|#)\s*[0-9]{1,6})?$", re.IGNORECASE)
_PURPOSE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.:/-]{0,63}$")
_SUBMISSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
_YES = frozenset({"yes", "y", "true", "1", "on", "x"})
_NO = frozenset({"no", "n", "false", "0", "off", ""})
MAX_PURPOSES = 20

Channel = Literal["form", "import"]


def field_name(name: str) -> str | None:
    """The canonical field a form key or column header names, or None (``" E-mail "`` -> ``email``)."""
    return _ALIASES.get(_SEPARATORS.sub("", str(name).strip().lower()))


@dataclass(frozen=True)
class FieldProblem:
    """One value that cannot be taken: the field (as the sender named it), the value and why."""

    field: str
    value: Any
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class Consent:
    """What the person agreed to on the form.

    Attributes:
        given: Whether they gave consent at all.
        purposes: What for (``marketing_email``, ``sales_contact``...), as the form names them.
        text: The consent wording they saw.
        version: The version of that wording.
    """

    given: bool
    purposes: tuple[str, ...] = ()
    text: str | None = None
    version: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The consent as the inbox keeps it."""
        return {"given": self.given, "purposes": list(self.purposes), "text": self.text, "version": self.version}


@dataclass(frozen=True)
class Submission:
    """One person as a source sent them, checked.

    Attributes:
        source: The capture source (``relay.yaml`` ``capture.sources``).
        email: The address, cleaned and lower-cased.
        person: The other person fields given (``first_name``... ``country``), non-empty only.
        utm: The UTM parameters given, non-empty only.
        consent: The consent given, when the submission says.
        preferences: The person's opt-outs (``email_opt_out``, ``do_not_call``: True or False) and lawful
            basis (``legal_basis``) given; written to the CRM fields the mapping reads them from.
        submission_id: The client's id of the submission, when it sent one.
        submitted_at: When the client says it was submitted.
        received_at: When Relay received it.
        ip: The client's address (X-Forwarded-For only from a trusted proxy); None for imports.
        channel: ``form`` or ``import``.
        origin: Where it came from: the browser Origin of a form post, the file and line of an import.
    """

    source: str
    email: str
    person: Mapping[str, str] = field(default_factory=dict, hash=False)
    utm: Mapping[str, str] = field(default_factory=dict, hash=False)
    consent: Consent | None = None
    submission_id: str | None = None
    submitted_at: datetime | None = None
    received_at: datetime | None = None
    preferences: Mapping[str, bool | str] = field(default_factory=dict, hash=False)
    ip: str | None = None
    channel: Channel = "form"
    origin: str | None = None

    @property
    def key(self) -> str:
        """The inbox key: the source and the client's id, or a hash of what was submitted (repeats share it)."""
        if self.submission_id:
            return f"{self.source}:{self.submission_id}"
        content = {"email": self.email, "person": dict(self.person), "utm": dict(self.utm),
                   "consent": self.consent.as_json() if self.consent else None,
                   "submitted_at": _iso(self.submitted_at)}
        if self.preferences:  # only when given: the keys of submissions without them stay what they were
            content["preferences"] = dict(self.preferences)
        digest = hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
        return f"{self.source}:sha256:{digest[:40]}"

    def as_json(self) -> dict[str, Any]:
        """The submission as the inbox keeps it (read back by :func:`submission_of`)."""
        return {"source": self.source, "email": self.email, "person": dict(self.person), "utm": dict(self.utm),
                "consent": self.consent.as_json() if self.consent else None, "submission_id": self.submission_id,
                "submitted_at": _iso(self.submitted_at), "received_at": _iso(self.received_at), "ip": self.ip,
                "channel": self.channel, "origin": self.origin, "preferences": dict(self.preferences)}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def submission_of(data: Any) -> Submission:
    """Read back a submission the inbox keeps (:meth:`Submission.as_json`).

    Raises:
        ValueError: naming what is missing or wrong.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"a stored submission must be an object, got {type(data).__name__}")
    email, source = data.get("email"), data.get("source")
    if not isinstance(email, str) or not email or not isinstance(source, str) or not source:
        raise ValueError("a stored submission needs its source and email")
    consent = data.get("consent")
    person, utm = data.get("person") or {}, data.get("utm") or {}
    if not isinstance(person, Mapping) or not isinstance(utm, Mapping):
        raise ValueError("a stored submission's person and utm must be objects")
    channel: Channel = "import" if data.get("channel") == "import" else "form"
    return Submission(
        source=source, email=email,
        person={str(k): str(v) for k, v in person.items() if k in PERSON_FIELDS and v},
        utm={str(k): str(v) for k, v in utm.items() if k in UTM_FIELDS and v},
        consent=Consent(bool(consent.get("given")), tuple(str(p) for p in consent.get("purposes") or ()),
                        consent.get("text"), consent.get("version")) if isinstance(consent, Mapping) else None,
        submission_id=data.get("submission_id") or None,
        submitted_at=_parse_time(data.get("submitted_at")), received_at=_parse_time(data.get("received_at")),
        ip=data.get("ip") or None, channel=channel, origin=data.get("origin") or None,
        preferences=_preferences(data.get("preferences")),
    )


def _preferences(value: Any) -> dict[str, bool | str]:
    """The preferences a stored submission holds (flags as booleans, the lawful basis as text)."""
    if not isinstance(value, Mapping):
        return {}
    found: dict[str, bool | str] = {}
    for name in PREFERENCE_FLAGS:
        if isinstance(value.get(name), bool):
            found[name] = value[name]
    if isinstance(value.get("legal_basis"), str) and value["legal_basis"]:
        found["legal_basis"] = value["legal_basis"]
    return found


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def read_fields(
    values: Iterable[tuple[str, Any]], *, unknown: Literal["refuse", "ignore"] = "refuse"
) -> tuple[dict[str, Any], list[FieldProblem]]:
    """Read named values (form keys or CSV columns) into canonical submission fields, checking each.

    Args:
        values: ``(name as sent, value)`` pairs; a name may repeat (form-encoded ``consent``
            checkboxes), which only ``consent`` allows.
        unknown: ``refuse``: a name that is no field is a problem; ``ignore``: it is skipped.

    Returns:
        ``(fields, problems)``: the checked, non-empty values by canonical name (``consent`` as a
        :class:`Consent`, ``submitted_at`` as a datetime), and every problem, each naming the field
        as it was sent. ``email`` is required.
    """
    fields: dict[str, Any] = {}
    problems: list[FieldProblem] = []
    sent_as: dict[str, str] = {}
    purposes: list[str] = []
    consent_flag: bool | None = None
    for raw_name, value in values:
        name = field_name(raw_name)
        if name is None:
            if unknown == "refuse":
                problems.append(FieldProblem(str(raw_name), value, f"not a field Relay takes (fields: {', '.join(FIELDS)})"))
            continue
        if name in sent_as and name != "consent":
            problems.append(FieldProblem(str(raw_name), value, f"given twice (also as {sent_as[name]!r})"))
            continue
        sent_as.setdefault(name, str(raw_name))
        if name == "consent" and (value is None or (isinstance(value, str) and not value.strip())):
            continue  # not stated: no consent recorded either way
        if name in PREFERENCE_FLAGS:
            if value is None or (isinstance(value, str) and not value.strip()):
                continue  # not stated
            flag_value = value if isinstance(value, bool) else str(value).strip().lower()
            if flag_value in _YES or flag_value is True:
                fields[name] = True
            elif flag_value in _NO or flag_value is False:
                fields[name] = False
            else:
                problems.append(FieldProblem(str(raw_name), value, "must be yes or no (true/false)"))
            continue
        if name == "consent":
            flag, found, problem = _consent_value(value)
            if problem is not None:
                problems.append(FieldProblem(str(raw_name), value, problem))
                continue
            if isinstance(value, Mapping):  # {"purposes": [...], "text": ..., "version": ...}
                for key in ("text", "version"):
                    if value.get(key) not in (None, "") and f"consent_{key}" not in sent_as:
                        _take(fields, problems, sent_as, f"consent_{key}", f"{raw_name}.{key}", value[key])
            consent_flag = flag if consent_flag is None else (consent_flag or flag)
            purposes.extend(p for p in found if p not in purposes)
            continue
        _take(fields, problems, sent_as, name, str(raw_name), value)
    if len(purposes) > MAX_PURPOSES:
        problems.append(FieldProblem(sent_as.get("consent", "consent"), purposes, f"more than {MAX_PURPOSES} purposes"))
    if consent_flag is not None or purposes or "consent_text" in fields or "consent_version" in fields:
        fields["consent"] = Consent(bool(consent_flag) or bool(purposes), tuple(purposes),
                                    fields.pop("consent_text", None), fields.pop("consent_version", None))
    if "email" not in fields and not any(p.field == sent_as.get("email") for p in problems):
        problems.insert(0, FieldProblem("email", None, "is required"))
    return fields, problems


def _take(fields: dict[str, Any], problems: list[FieldProblem], sent_as: dict[str, str], name: str, shown: str,
          value: Any) -> None:
    """Check one value of field ``name`` (sent as ``shown``) into ``fields`` or ``problems``."""
    sent_as.setdefault(name, shown)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        problems.append(FieldProblem(shown, value, f"must be text, got {type(value).__name__}"))
        return
    if isinstance(value, int) and name != "phone":
        problems.append(FieldProblem(shown, value, "must be text, got a number"))
        return
    text = str(value).strip()
    if not text:
        return
    if _CONTROL.search(text):
        problems.append(FieldProblem(shown, value, "contains a control character"))
        return
    limit = _MAX_LENGTH.get(name)
    if limit is not None and len(text) > limit:
        problems.append(FieldProblem(shown, value, f"is {len(text)} characters long, more than {limit}"))
        return
    if name == "email":
        email = clean_email(text)
        if not is_valid_email(email):
            problems.append(FieldProblem(shown, value, f"{text!r} is not an email address"))
            return
        fields[name] = email
    elif name == "phone":
        if not _PHONE.match(text) or sum(ch.isdigit() for ch in text) < 5:
            problems.append(FieldProblem(shown, value, f"{text!r} is not a phone number"))
            return
        fields[name] = text
    elif name == "submission_id":
        if not _SUBMISSION_ID.match(text):
            problems.append(FieldProblem(shown, value, "must be 1-100 letters, digits and . _ : - (starting with a "
                                                       "letter or digit)"))
            return
        fields[name] = text
    elif name == "submitted_at":
        when = _parse_time(text)
        if when is None:
            problems.append(FieldProblem(shown, value, f"{text!r} is not an ISO 8601 time with a time zone "
                                                       "(e.g. 2026-05-04T09:30:00Z)"))
            return
        fields[name] = when
    else:
        fields[name] = " ".join(text.split()) if name != "consent_text" else text


def _consent_value(value: Any) -> tuple[bool, list[str], str | None]:
    """``(given, purposes, problem)`` of a consent value: yes/no, a purpose, a list of them, or an object."""
    if isinstance(value, bool):
        return value, [], None
    if isinstance(value, Mapping):
        unknown = sorted(set(map(str, value)) - {"given", "purposes", "text", "version"})
        if unknown:
            return False, [], f"unknown keys {', '.join(unknown)} (use given, purposes, text, version)"
        given = value.get("given")
        if given is not None and not isinstance(given, bool):
            return False, [], "given must be true or false"
        flag, found, problem = _consent_value(value.get("purposes") or [])
        return (bool(given) if given is not None else flag), found, problem
    if isinstance(value, (list, tuple)):
        listed: list[str] = []
        for item in value:
            if not isinstance(item, str):
                return False, [], f"a purpose must be text, got {type(item).__name__}"
            _, more, problem = _consent_value(item)
            if problem is not None:
                return False, [], problem
            listed.extend(more)
        return bool(listed), listed, None
    if not isinstance(value, str):
        return False, [], f"must be yes/no or the purposes agreed to, got {type(value).__name__}"
    text = value.strip()
    if text.lower() in _YES:
        return True, [], None
    if text.lower() in _NO:
        return False, [], None
    found = [part.strip() for part in re.split(r"[;,|]", text) if part.strip()]
    for purpose in found:
        if not _PURPOSE.match(purpose):
            return False, [], f"{purpose!r} is not a purpose name (letters, digits, space and _ . : / -, at most 64)"
    return bool(found), found, None


def submission(
    source: str, fields: Mapping[str, Any], *, received_at: datetime, channel: Channel, ip: str | None = None,
    origin: str | None = None,
) -> Submission:
    """The submission of checked ``fields`` (from :func:`read_fields` without problems)."""
    return Submission(
        source=source, email=str(fields["email"]),
        person={name: str(fields[name]) for name in PERSON_FIELDS if fields.get(name)},
        utm={name: str(fields[name]) for name in UTM_FIELDS if fields.get(name)},
        consent=fields.get("consent"), submission_id=fields.get("submission_id"),
        submitted_at=fields.get("submitted_at"), received_at=received_at, ip=ip, channel=channel, origin=origin,
        preferences={name: fields[name] for name in PREFERENCE_FIELDS if fields.get(name) is not None},
    )
