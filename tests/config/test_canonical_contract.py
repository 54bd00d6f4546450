"""The canonical field catalogue the mappings are checked against matches the core's models."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from connector.config.canonical import CANONICAL_FIELDS
from connector.core import models

BOOKKEEPING = {"ref", "kind", "connection"}


@pytest.mark.parametrize(("entity", "model"), [("person", models.Person), ("account", models.Account), ("owner", models.Owner)])
def test_catalogue_matches_core_model(entity: str, model: type[BaseModel]) -> None:
    core_fields = {name: field for name, field in model.model_fields.items() if name not in BOOKKEEPING}
    assert set(CANONICAL_FIELDS[entity]) == set(core_fields)
    for name, type_name in CANONICAL_FIELDS[entity].items():
        annotation = str(core_fields[name].annotation)
        expected = {"datetime": "AwareDatetime"}.get(type_name, type_name)
        assert expected in annotation, f"{entity}.{name}: catalogue says {type_name}, core says {annotation}"
