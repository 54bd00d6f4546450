"""How fast the sandbox CRMs page through a large data set, through the official SDKs.

The sandboxes must never be a benchmark's bottleneck: paging through 100,000
records should go at thousands of records per second. This prints records per
second for both servers, measured in one run, plus the calls each ledger saw.

    python bench/sandbox_paging.py --leads 100000
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import UTC, datetime

from hubspot import HubSpot
from simple_salesforce import Salesforce

from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.salesforce.transport import sandbox_session
from crm_sandbox.seed import generate


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def page_salesforce(url: str) -> tuple[int, float]:
    session = sandbox_session(url)
    token = session.post(
        f"{url}/services/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": "sandbox", "client_secret": "sandbox"},
    ).json()
    sf = Salesforce(instance_url=token["instance_url"], session_id=token["access_token"], session=session, version="59.0")
    sf.headers["Sforce-Query-Options"] = "batchSize=2000"
    started = time.perf_counter()
    count = 0
    for _ in sf.query_all_iter("SELECT Id, FirstName, LastName, Email, Company, Country, SystemModstamp FROM Lead"):
        count += 1
    return count, time.perf_counter() - started


def page_hubspot(url: str) -> tuple[int, float]:
    client = HubSpot(access_token="sandbox-token", host=url)
    started = time.perf_counter()
    count = 0
    after = None
    while True:
        page = client.crm.contacts.basic_api.get_page(
            limit=100, after=after, properties=["firstname", "lastname", "email", "company", "country"]
        )
        count += len(page.results)
        if not page.paging or not page.paging.next:
            break
        after = page.paging.next.after
    return count, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    t0 = time.perf_counter()
    data = generate(seed=args.seed, leads=args.leads, anchor=datetime(2026, 1, 5, tzinfo=UTC))
    print(f"generated seed data for {args.leads:,} leads in {time.perf_counter() - t0:.1f} s (RSS {_rss_mib():.0f} MiB)")

    sf = SalesforceSandbox(data)
    hs = HubSpotSandbox(data, ten_second_limit=1_000_000, daily_limit=100_000_000)
    sf_server = sf.start()
    hs_server = hs.start()
    try:
        sf_count, sf_seconds = page_salesforce(sf_server.url)
        sf_calls = sf.ledger.totals()["calls"]
        sf_server_s = sum(e.duration_ms for e in sf.ledger.entries()) / 1000
        hs_count, hs_seconds = page_hubspot(hs_server.url)
        hs_calls = hs.ledger.totals()["calls"]
        hs_server_s = sum(e.duration_ms for e in hs.ledger.entries()) / 1000
    finally:
        sf.stop()
        hs.stop()

    print(f"{'server':<12}{'records':>10}{'calls':>7}{'SDK s':>8}{'SDK rec/s':>11}{'server s':>10}{'server rec/s':>14}")
    for name, count, seconds, calls, server_s in (
        ("salesforce", sf_count, sf_seconds, sf_calls, sf_server_s),
        ("hubspot", hs_count, hs_seconds, hs_calls, hs_server_s),
    ):
        print(
            f"{name:<12}{count:>10,}{calls:>7}{seconds:>8.2f}{count / seconds:>11,.0f}"
            f"{server_s:>10.2f}{count / max(server_s, 1e-9):>14,.0f}"
        )
    print("SDK: wall time seen by the official SDK (its own JSON decoding and model building included);"
          " server: time the sandbox spent answering (from its ledger).")
    print(f"peak RSS {_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
