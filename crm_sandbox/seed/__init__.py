"""Seed data for the sandbox CRMs: deterministic, realistically messy, with ground truth.

``generate(seed, leads, anchor)`` builds the records both sandbox servers load
(Salesforce Users, Accounts, Leads, Contacts, Opportunities, Tasks; HubSpot
owners, contacts, companies, deals, tasks, notes and associations) and the
ground truth that Relay's decision core is measured against (which records are
the same person or company, who works for which account, which opportunities
break their stage gate). Same inputs, byte-identical output.

Where things are:

- ``seed.messiness``: the rate of every kind of mess (duplicates, email variants, typos,
  free mail, missing fields, phone/country/state/title formats) and the helpers that
  make it; ``seed._build`` has the ownership rates (Lead Queue, inactive owner, mass
  update), ``seed._people`` the behaviour tiers that give the score funnel.
- ``seed.opportunities``: the stages of seed 002's sales process, ``STAGE_REQUIREMENTS``
  (what an opportunity in a stage must show) and ``violations()``.
- ``GroundTruth``: person clusters ``P<i>``, company clusters ``C<j>``, who works for which
  account, stage violations, and the person clusters that email keys cannot match
  (``hard``: "email_typo", "personal_email", "missing_email").

Salesforce records use the API field names of the shared contracts and of
``crm_sandbox.schema``; ids come from ``crm_sandbox.ids.salesforce_id``.
HubSpot records have string property values and ids from 1001 (contacts), 5001
(companies), 9001 (deals), 30001 (tasks), 40001 (notes).
"""

from __future__ import annotations

import gc
from datetime import UTC, datetime
from typing import Any

from crm_sandbox.seed._build import SeedBuilder
from crm_sandbox.seed._model import GroundTruth, RecordKey, SeedData

__all__ = ["GroundTruth", "RecordKey", "SeedData", "generate", "summary"]


def generate(seed: int = 42, leads: int = 500, anchor: datetime | None = None, *,
             dispositions: bool = True) -> SeedData:
    """Generate the sandbox CRMs' seed data.

    Args:
        seed: seed of the one random stream everything is drawn from (non-negative).
        leads: number of Salesforce leads; HubSpot gets about as many contacts, the CRMs
            about leads/8 accounts (at least 20), leads/3 Salesforce contacts and leads/5
            opportunities (at least 14, so every stage appears at least twice).
        anchor: "now" for the data, an aware datetime (converted to UTC, truncated to the
            millisecond). Default: today at 00:00 UTC.
        dispositions: put the dispositions reps set (seed 002 "Lead Disposition") on a share of the
            owned people; False leaves every disposition empty (the rest of the data is the same).

    Returns:
        The data set; the same arguments always give byte-identical ``to_json()``.

    Raises:
        ValueError: when ``leads`` or ``seed`` is negative or not an int, or ``anchor`` is
            not a timezone-aware datetime.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        # random.Random(-n) is random.Random(n): a negative seed would silently repeat another
        raise ValueError(f"generate(seed=...): seed must be a non-negative int, got {seed!r}")
    if isinstance(leads, bool) or not isinstance(leads, int) or leads < 0:
        raise ValueError(f"generate(leads=...): leads must be a non-negative int, got {leads!r}")
    if anchor is None:
        today = datetime.now(UTC).date()
        anchor = datetime(today.year, today.month, today.day, tzinfo=UTC)
    elif not isinstance(anchor, datetime) or anchor.tzinfo is None or anchor.utcoffset() is None:
        raise ValueError(f"generate(anchor=...): anchor must be a timezone-aware datetime, got {anchor!r}")
    anchor = anchor.astimezone(UTC)
    anchor = anchor.replace(microsecond=(anchor.microsecond // 1000) * 1000)
    # Millions of small dicts and no garbage cycles: the cyclic collector would only rescan them.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return SeedBuilder(seed, leads, anchor).build(dispositions=dispositions)
    finally:
        if collecting:
            gc.enable()


def summary(seed_data: SeedData) -> dict[str, Any]:
    """Counts for ``relay sandbox`` to print: records per object, duplicates, truth.

    Args:
        seed_data: a generated data set.
    """
    truth = seed_data.truth
    cross = sum(1 for c in truth.persons if len({k[0] for k in c}) > 1)
    return {
        "seed": seed_data.seed,
        "anchor": seed_data.anchor.isoformat(),
        "salesforce": {name: len(rows) for name, rows in seed_data.salesforce.items()},
        "hubspot": {name: len(rows) for name, rows in seed_data.hubspot.items()},
        "hubspot_owners": len(seed_data.hubspot_owners),
        "hubspot_associations": len(seed_data.hubspot_associations),
        "people": len(truth.persons),
        "people_with_duplicates": sum(1 for c in truth.persons if len(c) > 1),
        "people_in_both_crms": cross,
        "companies": len(truth.companies),
        "people_at_accounts": len(truth.person_company),
        "stage_violations": len(truth.stage_violations),
        "hard_cases": len(truth.hard),
    }
