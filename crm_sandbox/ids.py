"""Record ids the way the two CRMs shape them.

Salesforce ids are 15 case-sensitive characters (a 3-character key prefix that
names the object, a 2-character pod, a reserved character and a 9-character
base-62 counter) followed by a 3-character case-insensitive checksum, 18 in
all. HubSpot ids are decimal strings.
"""

from __future__ import annotations

import re

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[A-Z0-5]{3})?$")

#: Key prefixes of the standard objects the sandbox serves.
KEY_PREFIXES: dict[str, str] = {
    "Account": "001",
    "Contact": "003",
    "User": "005",
    "Opportunity": "006",
    "Lead": "00Q",
    "Task": "00T",
    "OpportunityHistory": "008",
    "OpportunityContactRole": "00K",
    "OpportunityLineItem": "00k",
    "Organization": "00D",
}
POD = "5e"


def checksum(id15: str) -> str:
    """The 3-character suffix that makes a 15-character id case-insensitive."""
    suffix = ""
    for chunk in range(3):
        bits = 0
        for i, char in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << i
        suffix += _CHECKSUM[bits]
    return suffix


def salesforce_id(prefix: str, counter: int) -> str:
    """The 18-character id number ``counter`` of the object with key ``prefix``.

    >>> salesforce_id("00Q", 1)
    '00Q5e0000000001EAA'
    """
    if len(prefix) != 3 or counter < 0:
        raise ValueError(f"bad Salesforce id parts: prefix={prefix!r} counter={counter}")
    digits = ""
    n = counter
    for _ in range(9):
        n, rem = divmod(n, 62)
        digits = _BASE62[rem] + digits
    if n:
        raise ValueError(f"counter {counter} does not fit a Salesforce id")
    id15 = f"{prefix}{POD}0{digits}"
    return id15 + checksum(id15)


def is_salesforce_id(value: str) -> bool:
    """True when ``value`` has the shape of a 15- or 18-character id (with a valid checksum)."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        return False
    return len(value) == 15 or checksum(value[:15]) == value[15:]


def to_id18(value: str) -> str:
    """Normalise a 15- or 18-character id to its 18-character form (ValueError when malformed)."""
    if not is_salesforce_id(value):
        raise ValueError(f"malformed Salesforce id: {value!r}")
    return value if len(value) == 18 else value + checksum(value)


def object_for_id(value: str) -> str | None:
    """The object an id belongs to, by its key prefix (None when unknown)."""
    prefix = value[:3]
    for name, key in KEY_PREFIXES.items():
        if key == prefix:
            return name
    return None
