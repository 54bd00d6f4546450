"""The ``relay`` command line. Thin: every command calls into the package."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    name="relay",
    help="Relay: CRM sync connector for RevOps teams (Salesforce, HubSpot).",
    no_args_is_help=True,
    add_completion=False,
)
config_app = typer.Typer(help="Validate and describe config/ and mappings/.", no_args_is_help=True)
db_app = typer.Typer(help="Relay's own database (sync state, ledger, outbox, audit).", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")

console = Console()
err_console = Console(stderr=True)


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Interface to bind (loopback only is sensible).")] = "127.0.0.1",
    salesforce_port: Annotated[int, typer.Option(help="Port of the Salesforce sandbox.")] = 8701,
    hubspot_port: Annotated[int, typer.Option(help="Port of the HubSpot sandbox.")] = 8702,
    seed: Annotated[int, typer.Option(help="Seed of the generated data (same seed, same data).")] = 42,
    leads: Annotated[int, typer.Option(help="Number of Salesforce leads to generate (HubSpot contacts alike).")] = 500,
    empty: Annotated[bool, typer.Option(help="Start with no seeded records (users/owners only come from seeding).")] = False,
    rate_limit: Annotated[float, typer.Option(help="Fault: probability of a 429 with Retry-After.")] = 0.0,
    retry_after: Annotated[float, typer.Option(help="Fault: seconds announced in Retry-After.")] = 1.0,
    server_error: Annotated[float, typer.Option(help="Fault: probability of a 503.")] = 0.0,
    drop: Annotated[float, typer.Option(help="Fault: probability of a dropped connection.")] = 0.0,
    latency_ms: Annotated[int, typer.Option(help="Fault: latency added to every call, in ms.")] = 0,
    partial_failure: Annotated[float, typer.Option(help="Fault: probability that a record of a batch write fails.")] = 0.0,
    daily_limit: Annotated[int, typer.Option(help="Salesforce daily API allocation.")] = 100_000,
    hubspot_webhook_url: Annotated[
        str | None, typer.Option(help="Deliver signed HubSpot v3 webhooks to this URL.")
    ] = None,
    hubspot_client_secret: Annotated[str, typer.Option(help="Client secret that signs the webhooks.")] = "sandbox-secret",
    salesforce_outbound_url: Annotated[
        str | None, typer.Option(help="Post Salesforce outbound messages (SOAP) to this URL.")
    ] = None,
    state_dir: Annotated[
        Path | None, typer.Option(help="Keep the sandboxes' state in JSON files here (loaded at start, saved at stop).")
    ] = None,
) -> None:
    """Run the Salesforce and HubSpot sandbox CRMs in the foreground."""
    from connector.sandbox.common import FaultSettings
    from connector.sandbox.hubspot import HubSpotSandbox
    from connector.sandbox.salesforce import SalesforceSandbox
    from connector.sandbox.seed import generate, summary

    faults = FaultSettings(
        rate_limit=rate_limit,
        retry_after=retry_after,
        server_error=server_error,
        drop=drop,
        latency_ms=latency_ms,
        partial_failure=partial_failure,
        seed=seed,
    )
    problems = faults.validate()
    if problems:
        for problem in problems:
            err_console.print(f"[red]error:[/red] --{problem}")
        raise typer.Exit(2)

    data = None if empty else generate(seed=seed, leads=leads)
    sf_state = state_dir / "salesforce.json" if state_dir else None
    hs_state = state_dir / "hubspot.json" if state_dir else None
    if state_dir:
        state_dir.mkdir(parents=True, exist_ok=True)
    sf = SalesforceSandbox(
        data, daily_limit=daily_limit, faults=faults, outbound_url=salesforce_outbound_url, state_file=sf_state
    )
    hs = HubSpotSandbox(
        data,
        faults=faults,
        webhook_url=hubspot_webhook_url,
        client_secret=hubspot_client_secret,
        state_file=hs_state,
    )
    sf_server = sf.start(host=host, port=salesforce_port)
    try:
        hs_server = hs.start(host=host, port=hubspot_port)
    except Exception:
        sf.stop()
        raise
    console.print("[bold]Relay sandbox CRMs are running[/bold] (Ctrl-C to stop)")
    if data is not None:
        console.print(f"seed {seed}: {summary(data)}")
    console.print(
        f"\n[bold]Salesforce[/bold]  {sf_server.url}\n"
        f"  export SALESFORCE_INSTANCE_URL={sf_server.url}\n"
        "  export SALESFORCE_CLIENT_ID=sandbox SALESFORCE_CLIENT_SECRET=sandbox\n"
        f"  token:  curl -d grant_type=client_credentials -d client_id=sandbox -d client_secret=sandbox "
        f"{sf_server.url}/services/oauth2/token\n"
        f"\n[bold]HubSpot[/bold]     {hs_server.url}\n"
        f"  export HUBSPOT_BASE_URL={hs_server.url} HUBSPOT_ACCESS_TOKEN=sandbox-token\n"
        f"  try:    curl -H 'Authorization: Bearer sandbox-token' '{hs_server.url}/crm/v3/objects/contacts?limit=3'\n"
        f"\nCall ledgers: {sf_server.url}/__sandbox/ledger  {hs_server.url}/__sandbox/ledger\n"
        f"Faults at run time: curl -X PUT -d '{{\"rate_limit\": 0.1}}' {sf_server.url}/__sandbox/faults"
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        hs.stop()
        sf.stop()
        console.print("sandboxes stopped")


def main() -> None:  # pragma: no cover - console-script shim
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
