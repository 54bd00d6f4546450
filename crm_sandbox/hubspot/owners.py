"""The sandbox sales team as HubSpot owners (used when no seed data names owners)."""

from __future__ import annotations

from typing import Any

DOMAIN = "northwind.example"
CREATED_AT = "2024-01-08T09:00:00.000Z"

#: (first name, last name, email local part, team, active)
TEAM: tuple[tuple[str, str, str, str, bool], ...] = (
    ("Dana", "Whitfield", "dana.whitfield", "Global", True),
    ("Marcus", "Chen", "marcus.chen", "NA", True),
    ("Priya", "Nair", "priya.nair", "EMEA", True),
    ("Hiro", "Tanaka", "hiro.tanaka", "APAC", True),
    ("Tom", "Becker", "tom.becker", "Global", True),
    ("Olivia", "Grant", "olivia.grant", "NA", True),
    ("Rafael", "Ortiz", "rafael.ortiz", "NA", True),
    ("Sophie", "Laurent", "sophie.laurent", "EMEA", True),
    ("Kenji", "Watanabe", "kenji.watanabe", "APAC", True),
    ("Liam", "Walsh", "liam.walsh", "NA", True),
    ("Emma", "Rossi", "emma.rossi", "NA", True),
    ("Ava", "Thompson", "ava.thompson", "NA", True),
    ("Lucas", "Silva", "lucas.silva", "NA", False),
    ("Noah", "Fischer", "noah.fischer", "EMEA", True),
    ("Mia", "Johansson", "mia.johansson", "EMEA", True),
    ("Ethan", "Park", "ethan.park", "APAC", True),
    ("Chloe", "Martin", "chloe.martin", "NA", True),
    ("Jack", "Wilson", "jack.wilson", "NA", True),
    ("Zoe", "Adams", "zoe.adams", "EMEA", True),
    ("Arjun", "Mehta", "arjun.mehta", "APAC", True),
    ("Grace", "Kim", "grace.kim", "Global", True),
    ("Daniel", "Okafor", "daniel.okafor", "Global", True),
)
_TEAM_IDS = {"Global": "1000", "NA": "1001", "EMEA": "1002", "APAC": "1003"}


def default_owners() -> list[dict[str, Any]]:
    """The sales team in the owners API shape; inactive users are archived owners."""
    owners = []
    for index, (first, last, local, team, active) in enumerate(TEAM):
        owners.append({
            "id": str(75_000_001 + index),
            "email": f"{local}@{DOMAIN}",
            "type": "PERSON",
            "firstName": first,
            "lastName": last,
            "userId": 9_000_001 + index,
            "userIdIncludingInactive": 9_000_001 + index,
            "createdAt": CREATED_AT,
            "updatedAt": CREATED_AT,
            "archived": not active,
            "teams": [{"id": _TEAM_IDS[team], "name": team, "primary": True}],
        })
    return owners


def owner_json(owner: dict[str, Any]) -> dict[str, Any]:
    """An owner with every key the SDK's ``PublicOwner`` model requires."""
    body = {
        "id": str(owner["id"]),
        "email": owner.get("email"),
        "type": owner.get("type", "PERSON"),
        "firstName": owner.get("firstName"),
        "lastName": owner.get("lastName"),
        "userId": owner.get("userId"),
        "userIdIncludingInactive": owner.get("userIdIncludingInactive", owner.get("userId")),
        "createdAt": owner.get("createdAt", CREATED_AT),
        "updatedAt": owner.get("updatedAt", owner.get("createdAt", CREATED_AT)),
        "archived": bool(owner.get("archived", False)),
        "teams": owner.get("teams", []),
    }
    return body
