"""Who may do what through the console: API tokens, and the roles of seed 002's access table.

Seed 002 "Data Access Controls":

| role | create | read | update | delete |
|---|---|---|---|---|
| Admin | yes | all | all | yes |
| Manager | yes | all | all | no |
| Rep | yes | own | own | no |
| Marketing | yes | all | own | no |
| Read-only | no | all | no | no |

A person is a Rep's or Marketing user's own when it is assigned to their email (any record of the
person). Data that belongs to nobody (runs, connections, rules, the review queue, deal findings)
needs ``all`` for the operation; managing API users is the Admin's alone (creating a user with a
role is not "creating a record": a Rep must not mint an Admin token).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from connector.pipeline.console import ApiRole, Caller

Operation = Literal["create", "read", "update", "delete"]


class Access(StrEnum):
    """How far a role reaches for one operation."""

    NONE = "none"
    OWN = "own"
    ALL = "all"


MATRIX: dict[ApiRole, dict[Operation, Access]] = {
    ApiRole.ADMIN: {"create": Access.ALL, "read": Access.ALL, "update": Access.ALL, "delete": Access.ALL},
    ApiRole.MANAGER: {"create": Access.ALL, "read": Access.ALL, "update": Access.ALL, "delete": Access.NONE},
    ApiRole.REP: {"create": Access.ALL, "read": Access.OWN, "update": Access.OWN, "delete": Access.NONE},
    ApiRole.MARKETING: {"create": Access.ALL, "read": Access.ALL, "update": Access.OWN, "delete": Access.NONE},
    ApiRole.READ_ONLY: {"create": Access.NONE, "read": Access.ALL, "update": Access.NONE, "delete": Access.NONE},
}
"""Role -> operation -> reach (seed 002 "Data Access Controls")."""


def access(role: ApiRole, operation: Operation) -> Access:
    """How far ``role`` reaches for ``operation``."""
    return MATRIX[role][operation]


def may(caller: Caller, operation: Operation, *, owners: set[str] | None = None) -> bool:
    """Whether ``caller`` may do ``operation``: on everything (``owners`` None: data nobody owns) or on a
    person owned by ``owners`` (their emails)."""
    reach = access(caller.role, operation)
    if reach is Access.ALL:
        return True
    if reach is Access.NONE or owners is None:
        return False
    return caller.email is not None and caller.email.strip().lower() in owners


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (None when absent or of another scheme)."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


__all__ = ["MATRIX", "Access", "Operation", "access", "bearer_token", "may"]
