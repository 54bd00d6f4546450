"""``relay dedupe report``: after syncs of both sandboxes, what merging their duplicates would do.

Measured against the seed's ground truth (which records are one real person), read through
the CSV a RevOps admin would open; nothing may change in either CRM.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pytest

from crm_sandbox.seed import SeedData

from ._cli import relay, sync_summary
from ._world import Crms, RelayEnv, config_copy


def _truth(seed: SeedData) -> dict[str, str]:
    """``connection/object/crm_id`` -> the real person."""
    names = {("salesforce", "Lead"): "salesforce/Lead", ("salesforce", "Contact"): "salesforce/Contact",
             ("hubspot", "contacts"): "hubspot/contacts"}
    return {f"{names[(crm, obj)]}/{crm_id}": person for (crm, obj, crm_id), person in seed.truth.person_of().items()
            if (crm, obj) in names}


def test_the_report_finds_the_seeded_duplicates_and_changes_nothing(
        relay_env: RelayEnv, crms: Crms, tmp_path: Path) -> None:
    sync_summary("salesforce")
    sync_summary("hubspot")
    calls_before = (len(crms.salesforce.ledger.entries()), len(crms.hubspot.ledger.entries()))

    out = tmp_path / "dedupe.csv"
    result = relay("dedupe", "report", "--out", str(out))

    assert result.exit_code == 0, result.output
    assert "nothing was written to a CRM" in result.output
    assert (len(crms.salesforce.ledger.entries()), len(crms.hubspot.ledger.entries())) == calls_before
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    truth = _truth(crms.seed)

    merges: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        if row["action"] == "merge":
            merges[row["set"]].append(row["record"])
    assert merges, result.output
    # every planned merge joins records of one real person, within one CRM object
    for survivor, members in merges.items():
        assert survivor in members
        assert len({truth[m] for m in members}) == 1, members
        assert len({m.rsplit("/", 1)[0] for m in members}) == 1, members
    # and finds most same-object duplicates the seed made
    same_object: dict[tuple[str, str], list[str]] = defaultdict(list)
    for key, person in truth.items():
        same_object[(person, key.rsplit("/", 1)[0])].append(key)
    seeded = [sorted(keys) for keys in same_object.values() if len(keys) > 1]
    found = [keys for keys in seeded if any(set(keys) <= set(members) for members in merges.values())]
    assert len(found) >= 0.8 * len(seeded), (len(found), len(seeded))
    # a person in both CRMs is a link, not a merge
    links: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row["action"] == "link":
            links[row["set"]].add(row["record"])
    assert links
    assert all(len({m.split("/")[0] + "/" + m.split("/")[1] for m in ids}) > 1 for ids in links.values())
    assert all(len({truth[m] for m in ids}) == 1 for ids in links.values())
    # each record merged away carries its evidence
    losers = [row for row in rows if row["action"] == "merge" and row["record"] != row["set"]]
    assert all(float(row["score"]) > 0 and row["reasons"] for row in losers)
    assert "blast-radius guard: within limits" in result.output


def test_the_blast_radius_guard_says_when_it_would_stop(
        relay_env: RelayEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_dir = config_copy(tmp_path / "config")
    monkeypatch.setenv("RELAY_CONFIG_DIR", str(config_dir))
    rules = config_dir / "rules" / "matching.yaml"
    rules.write_text(rules.read_text(encoding="utf-8").replace("max_records: 200", "max_records: 1"), encoding="utf-8")
    sync_summary("salesforce")
    sync_summary("hubspot")
    result = relay("dedupe", "report", "--out", str(tmp_path / "dedupe.csv"))
    assert result.exit_code == 0, result.output
    assert "blast-radius guard: would stop:" in result.output
    assert "more than merge_guard.max_records (1)" in result.output
