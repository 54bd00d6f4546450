"""Associations between records, with HubSpot's association type ids.

Each link is stored in both directions (the inverse type id on the other
side), so reading from either end is one dict lookup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AssociationType:
    """A HUBSPOT_DEFINED association type."""

    type_id: int
    from_type: str
    to_type: str
    label: str | None
    inverse: int
    v3_name: str


def _pair(from_type: str, to_type: str, unlabeled: tuple[int, int], primary: tuple[int, int] | None = None) -> list[AssociationType]:
    f, t = from_type[:-1] if from_type != "companies" else "company", to_type[:-1] if to_type != "companies" else "company"
    name, back = f"{f}_to_{t}", f"{t}_to_{f}"
    suffix = "_unlabeled" if primary else ""
    types = [
        AssociationType(unlabeled[0], from_type, to_type, None, unlabeled[1], name + suffix),
        AssociationType(unlabeled[1], to_type, from_type, None, unlabeled[0], back + suffix),
    ]
    if primary:
        types += [
            AssociationType(primary[0], from_type, to_type, "Primary", primary[1], name),
            AssociationType(primary[1], to_type, from_type, "Primary", primary[0], back),
        ]
    return types


_ALL = [
    *_pair("contacts", "companies", (279, 280), (1, 2)),
    *_pair("deals", "contacts", (3, 4)),
    *_pair("deals", "companies", (341, 342), (5, 6)),
    *_pair("tasks", "contacts", (204, 203)),
    *_pair("tasks", "companies", (192, 191)),
    *_pair("tasks", "deals", (216, 215)),
    *_pair("notes", "contacts", (202, 201)),
    *_pair("notes", "companies", (190, 189)),
    *_pair("notes", "deals", (214, 213)),
]
TYPES: dict[int, AssociationType] = {t.type_id: t for t in _ALL}
DEFAULT_TYPE: dict[tuple[str, str], int] = {(t.from_type, t.to_type): t.type_id for t in _ALL if t.label is None}


class AssociationStore:
    """Links between records: (type, id) -> to type -> to id -> association type ids."""

    def __init__(self) -> None:
        self._links: dict[tuple[str, int], dict[str, dict[int, set[int]]]] = {}

    def _side(self, object_type: str, object_id: int, to_type: str) -> dict[int, set[int]]:
        return self._links.setdefault((object_type, object_id), {}).setdefault(to_type, {})

    def add(self, from_type: str, from_id: int, to_type: str, to_id: int, type_id: int) -> None:
        """Link two records with a type id (and its inverse on the other side)."""
        kind = TYPES.get(type_id)
        if kind is None or (kind.from_type, kind.to_type) != (from_type, to_type):
            raise ValueError(f"association type {type_id} is not defined from {from_type} to {to_type}")
        self._side(from_type, from_id, to_type).setdefault(to_id, set()).add(type_id)
        self._side(to_type, to_id, from_type).setdefault(from_id, set()).add(kind.inverse)
        if kind.label == "Primary":
            unlabeled = DEFAULT_TYPE[(from_type, to_type)]
            self._side(from_type, from_id, to_type)[to_id].add(unlabeled)
            self._side(to_type, to_id, from_type)[from_id].add(TYPES[unlabeled].inverse)

    def remove(self, from_type: str, from_id: int, to_type: str, to_id: int) -> None:
        """Remove every link between two records."""
        self._side(from_type, from_id, to_type).pop(to_id, None)
        self._side(to_type, to_id, from_type).pop(from_id, None)

    def discard(self, from_type: str, from_id: int, to_type: str, to_id: int, type_id: int) -> None:
        """Remove one association type between two records (and its inverse)."""
        kind = TYPES.get(type_id)
        if kind is None:
            return
        for side, target, tid in ((self._side(from_type, from_id, to_type), to_id, type_id),
                                  (self._side(to_type, to_id, from_type), from_id, kind.inverse)):
            types = side.get(target)
            if types is not None:
                types.discard(tid)
                if not types:
                    del side[target]

    def linked(self, from_type: str, from_id: int, to_type: str) -> dict[int, set[int]]:
        """Ids linked to a record, with their type ids."""
        return self._links.get((from_type, from_id), {}).get(to_type, {})

    def v3_results(self, from_type: str, from_id: int, to_type: str) -> list[dict[str, str]]:
        """The v3 ``associations.{type}.results`` list of a record."""
        results = []
        for to_id in sorted(self.linked(from_type, from_id, to_type)):
            for type_id in sorted(self.linked(from_type, from_id, to_type)[to_id]):
                results.append({"id": str(to_id), "type": TYPES[type_id].v3_name})
        return results

    @staticmethod
    def v4_types(type_ids: set[int]) -> list[dict[str, Any]]:
        """``associationTypes`` of a v4 answer."""
        return [{"category": "HUBSPOT_DEFINED", "typeId": t, "label": TYPES[t].label} for t in sorted(type_ids)]

    def move(self, object_type: str, old_id: int, new_id: int) -> None:
        """Move every link of ``old_id`` to ``new_id`` (record merge)."""
        sides = self._links.pop((object_type, old_id), {})
        for to_type, targets in sides.items():
            for to_id, type_ids in targets.items():
                self._side(to_type, to_id, object_type).pop(old_id, None)
                for type_id in type_ids:
                    self.add(object_type, new_id, to_type, to_id, type_id)

    def to_json(self) -> list[list[Any]]:
        """Every link once per direction, as ``[from_type, from_id, to_type, to_id, type_id]``."""
        rows: list[list[Any]] = []
        for (from_type, from_id), sides in self._links.items():
            for to_type, targets in sides.items():
                for to_id, type_ids in targets.items():
                    rows.extend([from_type, from_id, to_type, to_id, t] for t in sorted(type_ids))
        return rows

    def load_json(self, rows: list[list[Any]]) -> None:
        """Restore what :meth:`to_json` saved."""
        self._links = {}
        for from_type, from_id, to_type, to_id, type_id in rows:
            self.add(from_type, int(from_id), to_type, int(to_id), int(type_id))


def labels(from_type: str, to_type: str) -> list[dict[str, Any]]:
    """The association labels between two object types (``GET /crm/v4/associations/{from}/{to}/labels``)."""
    return [
        {"category": "HUBSPOT_DEFINED", "typeId": t.type_id, "label": t.label}
        for t in _ALL
        if (t.from_type, t.to_type) == (from_type, to_type)
    ]
