"""``relay import FILE.csv --source NAME``: a list checked row by row, found or created in the CRM, decided."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from connector.store.models import InboxRow

from ._cli import relay
from ._crm import salesforce_client
from ._world import Crms, RelayEnv


def _known_lead(crms: Crms) -> str:
    """The email of a lead that is no contact too (a contact would be updated instead), on one lead only."""
    sf = salesforce_client(crms.salesforce)
    contacts = {str(r["Email"]).lower() for r in sf.query_all("SELECT Email FROM Contact WHERE Email != null")["records"]}
    leads = [str(r["Email"]) for r in sf.query_all("SELECT Email FROM Lead WHERE Email != null AND IsConverted = false "
                                                   "ORDER BY Id")["records"]]
    once = [email for email in leads if [e.lower() for e in leads].count(email.lower()) == 1]
    return next(email for email in once if email.lower() not in contacts)


def _write_list(path: Path, known: str, *, bad: bool = True, bom: bool = True) -> Path:
    rows = [
        "E-mail,First Name,Last Name,Company Name,Job Title,Phone,Country,UTM Source,Consent,Badge Number",
        "lin.wei@hooli.example,Lin,Wei,Hooli,VP Engineering,+1 415 555 0100,United States,expo,newsletter,B-17",
    ]
    if bad:
        rows.append("not-an-address,Bad,Email,Hooli,,,,,,B-18")
    rows.append(f"{known.upper()},,,,Chief Marketing Officer,,,expo,yes,B-19")
    if bad:
        rows.append('ok.name@hooli.example,Ok,Name,Hooli,,"call me maybe",,,,B-20')
    rows += ["", ""]
    path.write_text("\ufeff" * bom + "\r\n".join(rows), encoding="utf-8")
    return path


def test_an_import_creates_and_updates_the_good_rows_and_reports_the_bad_ones(
    relay_env: RelayEnv, crms: Crms, tmp_path: Path
) -> None:
    known = _known_lead(crms)
    listed = _write_list(tmp_path / "expo.csv", known)

    result = relay("import", str(listed), "--source", "events")

    assert result.exit_code == 4, result.output  # done, with bad rows
    assert "4 rows, 2 good, 2 bad" in result.output and "Badge Number" in result.output
    with (tmp_path / "expo.csv.errors.csv").open(encoding="utf-8", newline="") as handle:
        errors = list(csv.reader(handle))
    assert errors[0] == ["line", "column", "value", "reason"]
    assert errors[1][:3] == ["3", "E-mail", "not-an-address"] and "not an email address" in errors[1][3]
    assert errors[2][:3] == ["5", "Phone", "call me maybe"] and "not a phone number" in errors[2][3]
    sf = salesforce_client(crms.salesforce)
    [created] = sf.query("SELECT Id, FirstName, Company, Title, LeadSource, Relay_Score__c, OwnerId FROM Lead "
                         "WHERE Email = 'lin.wei@hooli.example'")["records"]
    assert (created["FirstName"], created["Company"], created["LeadSource"]) == ("Lin", "Hooli", "Trade Show")
    assert created["Relay_Score__c"] is not None  # decided by Relay after it was created
    updated = sf.query(f"SELECT Id, Title FROM Lead WHERE Email = '{known}'")["records"]
    assert [lead["Title"] for lead in updated] == ["Chief Marketing Officer"]  # updated, no second lead
    assert sf.query("SELECT Id FROM Lead WHERE Email = 'ok.name@hooli.example'")["totalSize"] == 0

    again = relay("import", str(listed), "--source", "events")
    assert "stored 0 new submissions (2 already stored)" in again.output


def test_a_dry_run_shows_what_would_change_and_writes_nothing(
    relay_env: RelayEnv, crms: Crms, tmp_path: Path, engine: Engine
) -> None:
    known = _known_lead(crms)
    listed = _write_list(tmp_path / "expo.csv", known, bad=False, bom=False)

    result = relay("import", str(listed), "--source", "events", "--dry-run")

    assert result.exit_code == 0, result.output
    assert "would create 1, update 1, leave 0 unchanged in salesforce; nothing was written" in result.output
    sf = salesforce_client(crms.salesforce)
    assert sf.query("SELECT Id FROM Lead WHERE Email = 'lin.wei@hooli.example'")["totalSize"] == 0
    assert sf.query(f"SELECT Title FROM Lead WHERE Email = '{known}'")["records"][0]["Title"] != "Chief Marketing Officer"
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(InboxRow)).scalar_one() == 0


def test_a_file_that_is_not_utf8_csv_is_refused_naming_the_file_and_line(relay_env: RelayEnv, tmp_path: Path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes("email,first_name\r\nzoe@acme.example,Zoe\r\nrene@acme.example,Ren\u00e9\r\n".encode("latin-1"))
    image = tmp_path / "badge.csv"
    image.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    nameless = tmp_path / "names.csv"
    nameless.write_text("name,company\nZoe,Acme\n", encoding="utf-8")

    for path, expected in [(latin, f"{latin}:3: not UTF-8"), (image, f"{image}:3: not a CSV file"),
                           (nameless, f"{nameless}:1: no email column")]:
        result = relay("import", str(path), "--source", "events")
        assert result.exit_code == 1 and expected in result.output, result.output

    unknown = relay("import", str(nameless), "--source", "webinar")
    assert unknown.exit_code == 2 and "no capture source 'webinar'" in unknown.output
