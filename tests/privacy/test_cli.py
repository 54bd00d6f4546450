"""``relay export-person`` and ``relay forget-person`` as a user runs them."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from typer.testing import CliRunner, Result

from connector.cli import app
from connector.pipeline.sync import run_sync
from connector.store.models import AuditRow, RecordRow

from .conftest import PERSON, World, rows_of

NORMALISED = PERSON.email.lower()


def relay(world: World, *args: str, answer: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=answer, env={"RELAY_DATABASE_URL": world.url})


def _emails(world: World) -> set[str | None]:
    return {row.canonical.get("email") for row in rows_of(world.engine, RecordRow, RecordRow.crm_id.in_(
        [world.lead_id, world.contact_id]))}


def test_export_then_forget_through_the_cli(start_world: Callable[[], World]) -> None:
    world = start_world()
    for name in ("salesforce", "hubspot"):
        run_sync(world.config, name, world.engine)

    exported = relay(world, "export-person", PERSON.email, "--json")
    assert exported.exit_code == 0, exported.output
    document = json.loads(exported.stdout)
    assert document["subject"]["email"] == PERSON.email and document["subject"]["key"].startswith("sha256:")
    assert {row["canonical"]["email"].lower() for row in document["tables"]["records"]["rows"]} == {NORMALISED}
    assert document["crm"].startswith("not touched")

    listed = relay(world, "export-person", PERSON.email)
    assert listed.exit_code == 0
    assert "records (2)" in listed.stdout and NORMALISED in listed.stdout.lower()

    refused = relay(world, "forget-person", PERSON.email, answer="n\n")
    assert refused.exit_code == 1 and "nothing erased" in refused.output
    assert _emails(world) == {NORMALISED}

    planned = relay(world, "forget-person", PERSON.email, "--dry-run")
    assert planned.exit_code == 0 and "dry run: nothing was changed" in planned.stdout
    assert "would erase" in planned.stdout and "records" in planned.stdout
    assert _emails(world) == {NORMALISED}

    done = relay(world, "forget-person", PERSON.email, answer="y\n")
    assert done.exit_code == 0, done.output
    assert "The CRMs are not touched" in done.stdout and "subject_forgotten" in done.stdout
    assert _emails(world) == {None}
    requests = [row.action for row in rows_of(world.engine, AuditRow, AuditRow.connection == "privacy")]
    assert requests == ["subject_exported", "subject_exported", "subject_forgotten"]  # a refusal or dry run: none

    again = relay(world, "forget-person", PERSON.email, "--yes")
    assert again.exit_code == 0


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("command", ["export-person", "forget-person"])
def test_a_person_is_named_by_an_email_address(start_world: Callable[[], World], command: str) -> None:
    world = start_world()
    result = relay(world, command, "Zebulon Quixote", "--yes" if command == "forget-person" else "--json")
    assert result.exit_code == 2
    assert "not an email address" in result.output
