"""The ``relay`` command line. Thin: every command calls into the package."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from connector.config.loader import RelayConfig
    from connector.pipeline.quality import QualityTally, SourceFigures
    from connector.pipeline.summary import PlannedChange, PlannedWrite, SyncSummary

app = typer.Typer(
    name="relay",
    help="Relay: CRM sync connector for RevOps teams (Salesforce, HubSpot).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help: flags without "<bool>", text as written
    epilog=("Environment: RELAY_DATABASE_URL, RELAY_CONFIG_DIR, RELAY_MAPPINGS_DIR, RELAY_HUEY_URL, RELAY_LOG_LEVEL, "
            "SALESFORCE_INSTANCE_URL, SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET, HUBSPOT_BASE_URL, "
            "HUBSPOT_ACCESS_TOKEN, HUBSPOT_CLIENT_SECRET (see the README)."),
)
config_app = typer.Typer(help="Validate and describe config/ and mappings/.", no_args_is_help=True, rich_markup_mode=None)
db_app = typer.Typer(help="Relay's own database (sync state, ledger, outbox, audit).", no_args_is_help=True, rich_markup_mode=None)
runs_app = typer.Typer(help="Sync runs recorded in Relay's store.", no_args_is_help=True, rich_markup_mode=None)
cursors_app = typer.Typer(help="Where each object's incremental read resumes.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(runs_app, name="runs")
app.add_typer(cursors_app, name="cursors")
clocks_app = typer.Typer(help="SLA clocks: reminders, escalations and aging re-queues.", no_args_is_help=True,
                         rich_markup_mode=None)
app.add_typer(clocks_app, name="clocks")
dedupe_app = typer.Typer(help="Duplicate people across everything Relay has read.", no_args_is_help=True,
                         rich_markup_mode=None)
app.add_typer(dedupe_app, name="dedupe")
users_app = typer.Typer(help="Who may use the admin API (/api/v1), with which role.", no_args_is_help=True,
                        rich_markup_mode=None)
app.add_typer(users_app, name="users")

_PIPED_WIDTH = 200
"""Width of tables when output goes to a pipe or a log (a terminal's own width is used otherwise)."""
console = Console(emoji=False, soft_wrap=True)  # lines are not cut at 80 columns when piped or logged
err_console = Console(stderr=True, emoji=False, soft_wrap=True)
for _console in (console, err_console):
    if not _console.is_terminal and "COLUMNS" not in os.environ:
        _console.width = _PIPED_WIDTH  # tables lay out for this width instead of rich's default 80
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ENV_EXAMPLE = """\
# Relay's process settings (copy to .env, or export them). The defaults point at the sandbox CRMs.
# RELAY_DATABASE_URL=postgresql+psycopg://relay@db.example:5432/relay   # default sqlite:///./relay.db
# RELAY_HUEY_URL=redis://127.0.0.1:6379/0                                # default: Huey on SQLite
# RELAY_LOG_LEVEL=WARNING
# RELAY_CONFIG_DIR=config
# RELAY_MAPPINGS_DIR=mappings
# RELAY_PUBLIC_URL=https://relay.example.com                            # behind a proxy: the URL CRMs call
# SALESFORCE_INSTANCE_URL=https://yourorg.my.salesforce.com
# SALESFORCE_CLIENT_ID=...
# SALESFORCE_CLIENT_SECRET=...
# SALESFORCE_API_VERSION=59.0
# SALESFORCE_ORGANIZATION_ID=00D...                                     # outbound messages from other orgs are refused
# SALESFORCE_OUTBOUND_TOKEN=...                                         # the ?token= of the outbound-message URL
# HUBSPOT_BASE_URL=https://api.hubapi.com
# HUBSPOT_ACCESS_TOKEN=...
# HUBSPOT_CLIENT_SECRET=...                                             # the app's secret: signs its webhooks
"""


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is logged (a test runner swaps it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _configure_logging(verbose: int) -> None:
    """Log to stderr at ``RELAY_LOG_LEVEL`` (default WARNING); each ``-v`` one level more (INFO, DEBUG)."""
    from connector.config.settings import get_settings

    try:
        configured = logging.getLevelName(get_settings().log_level)
    except Exception as exc:  # an invalid RELAY_LOG_LEVEL must not hide every other message
        err_console.print(f"[yellow]warning:[/yellow] {escape(str(exc).splitlines()[0])}; logging at WARNING")
        configured = logging.WARNING
    level = max(logging.DEBUG, int(configured) - 10 * verbose)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_relay", False):
            root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    from connector.privacy.logfilter import install, install_on_uvicorn

    install(handler)  # personal data and secrets masked in every line (connector/privacy/logfilter.py)
    install_on_uvicorn()  # and in uvicorn's, whatever handlers a server gives its loggers
    handler._relay = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)


@app.callback()
def main_options(
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More log output on stderr (-v INFO, -vv DEBUG).")
    ] = 0,
) -> None:
    """Relay: CRM sync connector for RevOps teams (Salesforce, HubSpot)."""
    from connector.process import tune_gc

    _configure_logging(verbose)
    tune_gc()


def _error(message: object) -> None:
    """Print one error line; the message is shown as text (a CRM's answer may hold brackets)."""
    err_console.print(f"[red]error:[/red] {escape(str(message))}", highlight=False, soft_wrap=True)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
             add_help_option=False)
def sandbox(ctx: typer.Context) -> None:
    """Run the sandbox CRMs in the foreground (every option: relay sandbox --help).

    The sandboxes are a package of their own (crm_sandbox, also `python -m crm_sandbox`):
    ports, seed data, TLS, faults and state files are its options.
    """
    from crm_sandbox.cli import main

    raise typer.Exit(main(ctx.args, prog="relay sandbox"))


def _load_config_or_exit(env: dict[str, str] | None = None) -> RelayConfig:
    from connector.config.loader import load_config
    from connector.config.problems import ConfigError
    from connector.config.settings import config_location

    where = config_location()
    try:
        return load_config(where.config_dir, where.mappings_dir, env=env)
    except ConfigError as exc:
        err_console.print(f"[red]configuration is invalid ({len(exc.problems)} problem(s)):[/red]")
        for problem in exc.problems:
            err_console.print(f"  {problem}", markup=False, highlight=False)
        raise typer.Exit(1) from None


def _open_store_or_exit(database_url: str | None = None) -> Engine:
    from connector.config.settings import get_settings
    from connector.store.errors import StoreError
    from connector.store.migrate import DatabaseNotMigrated, open_store

    url = database_url or get_settings().database_url.get_secret_value()
    try:
        return open_store(url)
    except (DatabaseNotMigrated, StoreError) as exc:
        _error(exc)
        raise typer.Exit(1) from None


@config_app.command("validate")
def config_validate(
    remote: Annotated[
        bool, typer.Option("--remote", help="Also check every mapped field against each connection's CRM.")
    ] = False,
) -> None:
    """Validate config/ and mappings/; exit 1 naming every problem (file, key, value)."""
    from connector.config.loader import validate_config
    from connector.config.settings import config_location

    location = config_location()
    problems = validate_config(location.config_dir, location.mappings_dir)
    where = escape(f"{location.config_dir}/ and {location.mappings_dir}/ ({location.origin})")
    if problems:
        err_console.print(f"[red]{len(problems)} problem(s) in {where}:[/red]")
        for problem in problems:
            err_console.print(f"  {problem}", markup=False, highlight=False)
        raise typer.Exit(1)
    console.print(f"[green]ok[/green]: {where} are valid")
    if remote:
        _validate_remote(_load_config_or_exit())


def _validate_remote(config: RelayConfig) -> None:
    """Check the fields each connection's mapping reads against its CRM; exit 1 naming every missing one."""
    from connector.adapters.errors import CrmError
    from connector.pipeline.connections import open_adapter
    from connector.pipeline.sync import mapped_field_problems

    failed = False
    for name in config.relay.connections:
        try:
            adapter = open_adapter(config, name)
            try:
                problems = mapped_field_problems(config, name, adapter)
            finally:
                adapter.close()
        except CrmError as exc:
            _error(exc)
            failed = True
            continue
        for problem in problems:
            _error(problem)
        failed = failed or bool(problems)
        if not problems:
            console.print(f"[green]ok[/green]: every field mapped for {escape(name)} exists in its CRM")
    if failed:
        raise typer.Exit(1)


@config_app.command("schema")
def config_schema(
    out_dir: Annotated[
        Path | None, typer.Option(help="Where to write the JSON Schema files (default: schema/ beside relay.yaml).")
    ] = None,
) -> None:
    """Write JSON Schemas of every config file (for editor autocompletion)."""
    from connector.config.schema import export_schemas
    from connector.config.settings import config_location

    if out_dir is None:
        location = config_location()
        if location.packaged and os.environ.get("RELAY_CONFIG_DIR") is None:
            _error("the configuration in use is the packaged defaults; run `relay init` for a copy of your own "
                   "(its schemas come with it), or give --out-dir")
            raise typer.Exit(1)
        out_dir = location.config_dir / "schema"
    for path in export_schemas(out_dir):
        console.print(f"wrote {path}", markup=False, highlight=False)


@config_app.command("diff")
def config_diff(
    old: Annotated[str, typer.Argument(help="A config directory (holding rules/), a rules directory, or a rules "
                                            "version the store recorded (hex, or its first characters).")],
    new: Annotated[str, typer.Argument(help="The same, for the newer rules.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the changes as JSON.")] = False,
) -> None:
    """What changed between two rule versions, in words, file by file (exit 2 naming an unknown one)."""
    from collections.abc import Iterator
    from contextlib import contextmanager

    from sqlalchemy.orm import Session

    from connector.config.diff import RecordedVersions, RuleSourceError, diff_sources, load_sources
    from connector.config.problems import ConfigError
    from connector.store.repositories.console import RulesVersions

    @contextmanager
    def recorded() -> Iterator[RecordedVersions]:
        engine = _open_store_or_exit()
        try:
            with Session(engine) as session:
                yield RulesVersions(session)
        finally:
            engine.dispose()

    try:
        sources = load_sources([old, new], recorded)
    except RuleSourceError as exc:
        _error(exc)
        raise typer.Exit(2) from None
    except ConfigError as exc:
        err_console.print(f"[red]rules are invalid ({len(exc.problems)} problem(s)):[/red]")
        for problem in exc.problems:
            err_console.print(f"  {problem}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    diff = diff_sources(*sources)
    if as_json:
        _print_json(diff.as_dict())
        return
    console.print(f"OLD: {diff.old.described}\nNEW: {diff.new.described}", highlight=False, markup=False)
    for change in diff.changes:
        console.print(change.text, highlight=False, markup=False)
    if diff.empty:
        console.print(f"no change in {', '.join(f'{p}.yaml' for p in diff.compared) or 'nothing compared'}",
                      highlight=False, markup=False)
    for note in diff.notes:
        console.print(f"note: {note}", highlight=False, markup=False)


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Where to write config/, mappings/ and .env.example.")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that already exist.")] = False,
) -> None:
    """Write an editable copy of the packaged configuration (rules, mappings, schemas, .env example) to keep in git."""
    from connector.config.settings import PACKAGED_DEFAULTS

    targets = {PACKAGED_DEFAULTS / "config": directory / "config", PACKAGED_DEFAULTS / "mappings": directory / "mappings"}
    existing = [str(target / path.relative_to(source)) for source, target in targets.items()
                for path in source.rglob("*") if path.is_file() and (target / path.relative_to(source)).exists()]
    if existing and not force:
        _error(f"{len(existing)} file(s) already exist, e.g. {existing[0]}; nothing written (--force overwrites)")
        raise typer.Exit(1)
    written = 0
    for source, target in targets.items():
        for path in sorted(source.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                destination = target / path.relative_to(source)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, destination)
                written += 1
    env_example = directory / ".env.example"
    if force or not env_example.exists():
        env_example.write_text(ENV_EXAMPLE)
        written += 1
    console.print(f"wrote {written} file(s) to {escape(str(directory))}: config/ (relay.yaml, rules/, schema/), "
                  "mappings/ and .env.example. Relay uses ./config and ./mappings when run from there, or "
                  "RELAY_CONFIG_DIR and RELAY_MAPPINGS_DIR from anywhere.", highlight=False)


@db_app.command("upgrade")
def db_upgrade(
    database_url: Annotated[str | None, typer.Option(help="Database URL (default: RELAY_DATABASE_URL).")] = None,
) -> None:
    """Migrate Relay's database to the newest schema."""
    from connector.config.settings import get_settings
    from connector.store.errors import StoreError
    from connector.store.migrate import current_revision, upgrade

    url = database_url or get_settings().database_url.get_secret_value()
    try:
        upgrade(url)
        revision = current_revision(url)
    except StoreError as exc:
        _error(exc)
        raise typer.Exit(1) from None
    console.print(f"database at migration {revision}")


class _RichProgress:
    """Draws a sync's progress with rich: records read per object, records written."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}
        self.writes = progress.add_task("written to the CRM", total=None, count=0)

    def object_started(self, object_name: str) -> None:
        self.tasks[object_name] = self.progress.add_task(f"reading {object_name}", total=None)

    def page_done(self, object_name: str, records: int) -> None:
        self.progress.advance(self.tasks[object_name], records)

    def writes_sent(self, count: int) -> None:
        self.progress.advance(self.writes, count)


def _print_summary(summary: SyncSummary) -> None:
    title = f"{summary.connection}: {'dry run, nothing written' if summary.dry_run else summary.mode + ' sync'}"
    table = Table(title=escape(title), show_header=False, box=None)
    table.add_row("records read", ", ".join(f"{obj} {n:,}" for obj, n in summary.read.items()) or "0")
    table.add_row("changed since last run", f"{summary.changed:,}")
    table.add_row("routed", f"{sum(summary.routed.values()):,}")
    if summary.propagated:
        table.add_row("owner taken from the same person elsewhere", f"{summary.propagated:,}")
    for owner, n in sorted(summary.routed.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row("", escape(f"{owner}: {n}"))
    if summary.dry_run:
        tasks = sum(1 for write in summary.planned if write.purpose == "task")
        table.add_row("would write", f"{len(summary.planned):,} record(s): {len(summary.planned) - tasks:,} update(s), "
                      f"{tasks:,} task(s)")
    else:
        table.add_row("records updated", f"{summary.records_updated:,}")
        table.add_row("tasks created", f"{summary.tasks_created:,}")
    table.add_row("deleted / merged", f"{summary.deleted} / {summary.merged}")
    table.add_row("API calls", f"{summary.api_call_total:,} " + str(dict(summary.api_calls)))
    table.add_row("errors", f"{summary.errors} ({summary.quarantined} quarantined, {len(summary.write_failures)} refused)")
    if summary.findings:
        table.add_row("data-quality findings",
                      escape(", ".join(f"{k} {v}" for k, v in summary.findings.most_common())))
    if summary.governance:
        table.add_row("deal governance",
                      escape(", ".join(f"{k} {v}" for k, v in summary.governance.most_common())))
    table.add_row("time", f"{summary.seconds:.1f} s")
    console.print(table)
    _print_quality(summary.quality)
    if summary.duplicates is not None:
        done = summary.duplicates
        if "error" in done:
            console.print(f"  [red]dedupe pass failed[/red]: {escape(str(done['error']))}", highlight=False)
        elif done.get("stopped"):
            console.print(f"  [red]dedupe: blast-radius guard stopped the merges[/red]: {escape(str(done['stopped']))}",
                          highlight=False)
        else:
            console.print(f"  dedupe: merged {done['merged']}, flagged {done['flagged']}, linked {done['linked']}, "
                          f"{done['reviews_queued']} new review items", highlight=False)
    for failure in summary.write_failures[:20]:
        console.print(f"  [red]refused[/red] {escape(str(failure))}", highlight=False)
    if len(summary.write_failures) > 20:
        console.print(f"  ... and {len(summary.write_failures) - 20} more (see the audit log)")


QUALITY_SOURCES_SHOWN = 15
"""Lead sources a summary lists one by one (the largest first); the rest are added up in one line."""


def _print_quality(quality: QualityTally | None) -> None:
    """The run's data quality, all sources then each lead source, against the SOP targets."""
    if quality is None:
        console.print("data quality: not measured (no person record was decided)")
        return
    rules = quality.rules
    table = Table(title=f"data quality (targets: completeness > {rules.completeness_min_percent:g} %, "
                        f"duplicates < {rules.duplicates_max_percent:g} %)",
                  box=None, title_justify="left")
    for header in ("lead source", "people", "completeness", "duplicates", "invalid emails", "invalid phones",
                   "enriched"):
        table.add_column(header, justify="left" if header == "lead source" else "right")
    by_size = sorted(quality.sources.items(), key=lambda kv: (-kv[1].records, kv[0]))
    table.add_row("all sources", *_quality_cells(quality.total, quality))
    for source, figures in by_size[:QUALITY_SOURCES_SHOWN]:
        table.add_row(escape(source), *_quality_cells(figures, quality))
    console.print(table)
    if len(by_size) > QUALITY_SOURCES_SHOWN:
        rest = sum(figures.records for _, figures in by_size[QUALITY_SOURCES_SHOWN:])
        console.print(f"  ... and {len(by_size) - QUALITY_SOURCES_SHOWN} more lead sources ({rest:,} people)")
    missing = quality.total.missing(rules.required_fields)
    if missing:
        console.print("  required fields missing: " + escape(", ".join(f"{k} {v:,}" for k, v in missing.items())))
    if quality.not_mapped:
        console.print("  not measured (the mapping does not read them): " + escape(", ".join(quality.not_mapped)))


def _quality_cells(figures: SourceFigures, quality: QualityTally) -> tuple[str, ...]:
    """One row of the data-quality table: each rate with its verdict (ok / BELOW / ABOVE target)."""
    rules = quality.rules
    completeness = figures.completeness_percent(rules.required_fields)
    duplicates = figures.duplicate_percent or 0.0
    enriched = figures.enrichment_percent
    return (
        f"{figures.records:,}",
        "not measured" if completeness is None else
        f"{completeness:.1f} % " + ("ok" if completeness > rules.completeness_min_percent else "BELOW"),
        f"{figures.duplicates:,} = {duplicates:.1f} % " + ("ok" if duplicates < rules.duplicates_max_percent else "ABOVE"),
        f"{figures.invalid_emails:,} of {figures.emails:,}",
        f"{figures.invalid_phones:,} of {figures.phones:,}",
        "not measured" if enriched is None else f"{enriched:.1f} %",
    )


def _print_planned(summary: SyncSummary) -> None:
    """A dry run's plan, after its summary: per object, each record's changed fields old -> new; then the tasks.

    Every planned write is listed: an admin checks the plan before letting it run, and the
    text is one line per row whatever the terminal's width, so it can be grepped and diffed.
    """
    if not summary.planned:
        console.print("nothing to write: the CRM already holds every decision")
        return
    by_object: dict[str, list[PlannedWrite]] = {}
    for write in summary.planned:
        if write.purpose != "task":
            by_object.setdefault(write.object, []).append(write)
    for object_name, writes in by_object.items():
        fields = sum(len(write.changes) for write in writes)
        _print_plan_table(f"{object_name}: {len(writes):,} record(s) to update, {fields:,} field(s)",
                          ("record", "person", "field", "old", "", "new"), [_update_rows(write) for write in writes])
    tasks = [write for write in summary.planned if write.purpose == "task"]
    if tasks:
        _print_plan_table(f"{tasks[0].object}: {len(tasks):,} task(s) to create", ("for record", "subject", "owner", "due"),
                          [[_task_row(write) for write in tasks]])


def _update_rows(write: PlannedWrite) -> list[tuple[str, ...]]:
    """One planned update: a row per changed field, the record named on the first."""
    record = (write.crm_id or "(new)", write.record.label or "-" if write.record is not None else "-")
    if not write.changes:  # sent at the values last read: nothing differs that Relay knows of
        return [(*record, "-", "(no field differs from what Relay last read)", "", "")]
    return [
        (*(record if index == 0 else ("", "")), change.field, _old_value(change), "->",
         _plan_value(change.new, change.new_label))
        for index, change in enumerate(write.changes)
    ]


def _task_row(write: PlannedWrite) -> tuple[str, ...]:
    task = write.task
    if task is None:
        return (str(write.record or "-"), "-", "-", "-")
    return (str(write.record or "-"), task.subject or "-", _plan_value(task.owner_id, task.owner_label), task.due or "-")


def _print_plan_table(title: str, header: tuple[str, ...], groups: list[list[tuple[str, ...]]]) -> None:
    """Print a table as fixed-width text: title, header, rule, then the groups of rows (a blank line between).

    Not a rich ``Table``: laying one out costs about 1 ms a row, and a first dry run of
    5,000 leads plans some 40,000 changed fields (40 s of layout; this takes under one).
    Cells are printed as text, never read as markup, and a line break in a value is
    shown as ``\\n`` so each row stays one line.
    """
    from rich.cells import cell_len

    rows = [tuple(_one_line(cell) for cell in row) for group in groups for row in group]
    widths = [max(cell_len(cell) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: tuple[str, ...]) -> str:
        return "  " + "  ".join(cell + " " * (width - cell_len(cell)) for cell, width in zip(cells, widths,
                                                                                            strict=True)).rstrip()

    console.print()
    console.print(title, style="bold", markup=False, highlight=False)
    console.print(line(header), style="bold", markup=False, highlight=False)
    lines = ["  " + "-" * (sum(widths) + 2 * (len(widths) - 1))]
    done = 0
    for index, group in enumerate(groups):
        if index:
            lines.append("")  # between records
        lines.extend(line(row) for row in rows[done:done + len(group)])
        done += len(group)
    _write_plain("\n".join(lines))


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")


def _print_json(data: dict[str, Any]) -> None:
    """Print ``data`` as indented JSON; coloured in a terminal unless large (a dry run's plan can run to megabytes).

    rich's JSON highlighting takes about 4 s a megabyte (a 12 MB plan: 50 s); written as is, well under one.
    """
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if console.is_terminal and len(text) <= 200_000:
        console.print_json(text)
    else:
        _write_plain(text)


def _write_plain(text: str) -> None:
    """Write ``text`` and a newline to the console's file as is: no markup, wrapping or highlighting to pay for."""
    out = console.file
    out.write(text + "\n")
    out.flush()


def _old_value(change: PlannedChange) -> str:
    return _plan_value(change.old, change.old_label) if change.old_known else "(unknown)"


def _plan_value(value: Any, label: str | None = None) -> str:
    """A field value as the plan shows it: empty values said so, an owner id with its email."""
    if value is None or value == "":
        return "(empty)"
    text = json.dumps(value) if isinstance(value, dict | list) else str(value)
    return f"{text} ({label})" if label else text


def _run_sync_with_progress(config: RelayConfig, connection: str, engine: Engine, **options: Any) -> SyncSummary:
    from connector.pipeline.sync import run_sync

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed:,.0f}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        return run_sync(config, connection, engine, progress=_RichProgress(bar), **options)


@app.command()
def sync(
    connection: Annotated[str, typer.Argument(help="Connection name from config/relay.yaml.")],
    full: Annotated[bool, typer.Option("--full", help="Read everything, not only what changed.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Decide and show what would change; write nothing.")] = False,
    take_over: Annotated[
        bool, typer.Option("--take-over", help="Take over from a running sync whose process died (no heartbeat for 1 min).")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="With --take-over: take over even a sync whose heartbeat is fresh.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Run one sync of CONNECTION: read, decide, write back, audit.

    Exit codes: 0 done; 1 configuration, store or CRM error, or an unknown connection;
    2 usage error; 3 another sync of the connection is running; 4 done, but the CRM
    refused some records (listed); 5 this run was taken over by another; 6 the connection is paused.
    """
    from connector.adapters.errors import CrmError
    from connector.pipeline.heartbeat import SyncTakenOver
    from connector.store.errors import ConnectionPaused, SyncAlreadyRunning

    config = _load_config_or_exit()
    _require_connection(config, connection)
    engine = _open_store_or_exit()
    try:
        summary = _run_sync_with_progress(config, connection, engine, full=full, dry_run=dry_run,
                                          take_over=take_over, force=force)
    except SyncAlreadyRunning as exc:
        hint = ("its heartbeat is fresh, so it is alive; --take-over --force takes it over anyway" if take_over
                else "if its process died, run again with --take-over")
        _error(f"{exc}. {hint[:1].upper()}{hint[1:]}.")
        raise typer.Exit(3) from None
    except SyncTakenOver as exc:
        _error(exc)
        raise typer.Exit(5) from None
    except ConnectionPaused as exc:
        _error(exc)
        raise typer.Exit(6) from None
    except CrmError as exc:
        _error(exc)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    if as_json:
        _print_json(summary.as_dict())
    else:
        _print_summary(summary)
        if dry_run:
            _print_planned(summary)
    if summary.write_failures:
        raise typer.Exit(4)


def _require_connection(config: RelayConfig, connection: str) -> None:
    if connection not in config.relay.connections:
        _error(f"no connection {connection!r} in config/relay.yaml (known: {', '.join(config.relay.connections)})")
        raise typer.Exit(1)


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


@runs_app.command("list")
def runs_list(
    connection: Annotated[str | None, typer.Argument(help="Only this connection's runs.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many of the latest runs.")] = 20,
) -> None:
    """The latest sync runs: id, connection, mode, status, start, end, counts."""
    from connector.store.db import session_factory
    from connector.store.repositories import Repositories

    engine = _open_store_or_exit()
    try:
        with session_factory(engine)() as session:
            runs = Repositories(session).sync_runs.recent(connection, limit=limit)
    finally:
        engine.dispose()
    table = Table("run", "connection", "mode", "status", "started (UTC)", "finished (UTC)", "read", "errors",
                  box=None)
    for run in runs:
        table.add_row(str(run.id), escape(run.connection), run.mode.value, run.status.value, _when(run.started_at),
                      _when(run.finished_at), f"{run.counts.get('read', 0):,}", f"{run.counts.get('errors', 0):,}")
    console.print(table if runs else "no sync runs recorded yet")


@runs_app.command("show")
def runs_show(run_id: Annotated[int, typer.Argument(help="The run's id (see relay runs list).")]) -> None:
    """One sync run in full: status, heartbeat, counts and its error."""
    from connector.store.db import session_factory
    from connector.store.errors import StoreError
    from connector.store.repositories import Repositories

    engine = _open_store_or_exit()
    try:
        with session_factory(engine)() as session:
            run = Repositories(session).sync_runs.get(run_id)
    except (StoreError, LookupError) as exc:
        _error(exc)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    table = Table(title=f"sync run {run.id}", show_header=False, box=None)
    table.add_row("connection", escape(run.connection))
    table.add_row("mode", run.mode.value)
    table.add_row("status", run.status.value)
    table.add_row("started (UTC)", _when(run.started_at))
    table.add_row("last heartbeat (UTC)", _when(run.heartbeat_at))
    table.add_row("finished (UTC)", _when(run.finished_at))
    for key, value in sorted(run.counts.items()):
        table.add_row(escape(key), f"{value:,}")
    table.add_row("error", escape(run.error or "-"))
    console.print(table)


@cursors_app.command("list")
def cursors_list(connection: Annotated[str, typer.Argument(help="Connection name from config/relay.yaml.")]) -> None:
    """Where the next incremental sync of each object of CONNECTION starts."""
    from connector.store.db import session_factory
    from connector.store.repositories import Repositories

    engine = _open_store_or_exit()
    try:
        with session_factory(engine)() as session:
            cursors = Repositories(session).cursors.all(connection)
    finally:
        engine.dispose()
    table = Table("object", "last modified (UTC)", "last id", "checkpointed (UTC)", box=None)
    for cursor in cursors:
        table.add_row(escape(cursor.object), cursor.last_modified.isoformat(), escape(cursor.last_id or "-"),
                      _when(cursor.updated_at))
    console.print(table if cursors else f"no cursors for {escape(connection)}: its next sync reads everything")


@cursors_app.command("reset")
def cursors_reset(
    connection: Annotated[str, typer.Argument(help="Connection name from config/relay.yaml.")],
    object_name: Annotated[str | None, typer.Argument(metavar="[OBJECT]", help="One object (default: all).")] = None,
) -> None:
    """Forget where CONNECTION's reads stopped: the next sync reads everything (or OBJECT) again.

    Nothing is lost: records read again that did not change write nothing, and a person
    keeps their assignment.
    """
    from connector.store.db import session_factory
    from connector.store.repositories import Repositories

    engine = _open_store_or_exit()
    try:
        with session_factory(engine).begin() as session:
            removed = Repositories(session).cursors.reset(connection, object_name)
    finally:
        engine.dispose()
    what = f"{connection}.{object_name}" if object_name else connection
    console.print(f"reset {removed} cursor(s) of {escape(what)}; the next sync reads "
                  f"{'that object' if object_name else 'every object'} from the start")


@app.command()
def status(
    connection: Annotated[str | None, typer.Argument(help="Only this connection (default: every one).")] = None,
) -> None:
    """Per connection: the API budget (window and day used of their limits, the reserve kept for real time,
    what the CRM's last answer said), the last run and the outbox; then the webhook events waiting."""
    from connector.pipeline.budget import connection_status, inbox_backlog

    config = _load_config_or_exit()
    if connection is not None:
        _require_connection(config, connection)
    names = [connection] if connection is not None else list(config.relay.connections)
    engine = _open_store_or_exit()
    try:
        shown = [connection_status(name, config.connection(name), engine) for name in names]
        backlog = inbox_backlog(engine)
    finally:
        engine.dispose()
    table = Table("connection", "API window", "API day", "reserve (real time)", "last answer said", "last run",
                  "outbox pending", box=None)
    for item in shown:
        window = (f"{item.window.used:,} / {item.window.limit:,} per {item.window_seconds:g} s"
                  if item.window is not None else "-")
        day = f"{item.day.used:,} / {item.day.limit:,}" if item.day is not None else "-"
        reserve = ", ".join(part for part in (
            f"{item.window.reserve:,} of the window" if item.window is not None else "",
            f"{item.day.reserve:,} of the day" if item.day is not None else "") if part) or "-"
        said = escape(_budget_said(item.seen))
        run = item.last_run
        last = (f"{run.id} {run.mode.value} {run.status.value} {_when(run.finished_at or run.started_at)}"
                if run is not None else "-")
        table.add_row(escape(item.name), window, day, reserve, said, last, f"{item.outbox_pending:,}")
    console.print(table)
    console.print(f"webhook events waiting: {backlog.get('waiting', 0):,} "
                  f"(claimed {backlog.get('claimed', 0):,}, claim expired {backlog.get('expired', 0):,})")


def _budget_said(seen: dict[str, Any] | None) -> str:
    """What the CRM's last answer said of the budget, in a few words (``window 37 of 40 left; day ...``)."""
    if not seen:
        return "-"
    parts = []
    if seen.get("window_remaining") is not None and seen.get("window_limit") is not None:
        parts.append(f"window {seen['window_remaining']:,} of {seen['window_limit']:,} left")
    if seen.get("day_used") is not None and seen.get("day_limit") is not None:
        parts.append(f"day {seen['day_used']:,} of {seen['day_limit']:,} used")
    if seen.get("refused"):
        parts.append(f"refused ({seen.get('status', '?')})")
    at = str(seen.get("at", "")).replace("T", " ")[:19]
    return "; ".join(parts) + (f" ({at} UTC)" if at else "") if parts else "-"


@app.command()
def demo(
    leads: Annotated[int, typer.Option(min=1, help="Leads to generate in each sandbox CRM.")] = 300,
    seed: Annotated[int, typer.Option(help="Seed of the generated data.")] = 42,
    database: Annotated[
        Path, typer.Option(help="SQLite file for the demo's store (recreated on each run).")
    ] = Path(".relay/demo.db"),
    serve: Annotated[bool, typer.Option(
        "--serve", help="Then serve the admin API and the dashboard over the demo's store (Ctrl-C stops), with a "
                        "user of every role whose token is printed.")] = False,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port for --serve (0: one the OS picks).")] = 8700,
) -> None:
    """Start the sandbox CRMs, seed them, sync both with the default rules, show what happened."""
    from connector.crms import load_units
    from crm_sandbox import SandboxGroup
    from crm_sandbox.seed import generate

    console.print(f"[bold]Relay demo[/bold]: seeding the sandbox CRMs with {leads} leads each (seed {seed})")
    data = generate(seed=seed, leads=leads)
    names = [*(unit.sandbox for unit in load_units().values() if unit.sandbox), "notify"]
    # HubSpot pushes webhooks (to Relay's intake, started below once its port is known).
    webhooks = {"webhook_url": "http://127.0.0.1:9/relay-not-started-yet"}
    with SandboxGroup(names, seed_data=data, options={"hubspot": webhooks} if "hubspot" in names else None) as group:
        config = _load_config_or_exit(dict(os.environ, **group.env()))
        database.parent.mkdir(parents=True, exist_ok=True)
        database.unlink(missing_ok=True)
        engine = _open_store_or_exit(f"sqlite:///{database}")
        where = ", ".join(f"sandbox {settings.label} {settings.base_url}" for settings in group.client_settings())
        console.print(f"{where}, store {database}\n", highlight=False)
        summaries = []
        for name in config.relay.connections:
            summary = _run_sync_with_progress(config, name, engine)
            summaries.append(summary)
            _print_summary(summary)
            _print_examples(summary)
        console.print(
            "\n[bold]Second pass[/bold]: a person known in both CRMs takes the owner decided in the other one"
        )
        for name in config.relay.connections:
            _print_rerun(_run_sync_with_progress(config, name, engine))
        console.print("[bold]Third pass[/bold] over unchanged records: nothing to write")
        for name in config.relay.connections:
            _print_rerun(_run_sync_with_progress(config, name, engine))
        _demo_duplicates(config, engine)
        _demo_governance(engine)
        if "hubspot" in config.relay.connections and "hubspot" in group.sandboxes:
            _demo_real_time(config, engine, group)
        if serve:
            _demo_serve(config, engine, port)  # the sandboxes keep running: a sync asked through the API works
        engine.dispose()
    failures = sum(len(s.write_failures) for s in summaries)
    console.print(f"\nDone. Audit log, ledger and outbox are in {database} (relay's store).")
    if failures:
        raise typer.Exit(4)


DEMO_USERS = (("demo-admin", "admin"), ("demo-manager", "manager"), ("demo-rep", "rep"),
              ("demo-marketing", "marketing"), ("demo-readonly", "read_only"))
"""The demo's API users, one per role of seed 002's access table."""


def _demo_serve(config: RelayConfig, engine: Engine, port: int) -> None:
    """Serve the admin API and dashboard over the demo's store until Ctrl-C, with a user of every role."""
    import signal
    import time
    from collections import Counter

    from connector.pipeline.console import Console
    from connector.pipeline.context import utc_now
    from connector.web.app import create_app
    from crm_sandbox.runner import SandboxServer

    relay = Console(config, engine, clock=utc_now)
    loads = Counter(a["owner_email"] for a in relay.assignments(limit=500))
    rep = loads.most_common(1)[0][0] if loads else "liam.walsh@northwind.example"
    table = Table("role", "user", "their records", "token (Authorization: Bearer ...)")
    for name, role in DEMO_USERS:
        email = rep if role == "rep" else "marketing@northwind.example" if role == "marketing" else None
        _, token = relay.add_user(name, role, email)
        table.add_row(role, name, email or "all", token)
    server = SandboxServer(create_app(config, engine), port=port, name="relay").start()  # a small store: no warm-up
    console.print(f"\n[bold]Relay serve[/bold] on {server.url}: the dashboard at {server.url}/ , the admin API at "
                  f"{server.url}/api/v1 (documented at {server.url}/api/v1/docs). Users, one per role:", highlight=False)
    console.print(table)
    console.print("Ctrl-C stops the server and the sandbox CRMs.", highlight=False)
    # Ctrl-C and a plain kill both stop it, even when started with SIGINT ignored (a shell's background job,
    # a parent that ignores it: Python then installs no KeyboardInterrupt handler and Ctrl-C did nothing).
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, signal.default_int_handler)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        server.stop()


def _demo_duplicates(config: RelayConfig, engine: Engine) -> None:
    """What ``relay dedupe report`` finds among the people the syncs read (nothing is merged)."""
    from connector.pipeline.dedupe import dedupe_report

    report = dedupe_report(config, engine)
    console.print("\n[bold]Duplicates[/bold] (relay dedupe report; the shipped setting only reports them)")
    for source, (sets, away) in report.merges_by_source().items():
        console.print(f"  {source}: {sets} duplicate sets, {away} records a merge would remove", highlight=False,
                      markup=False)
    console.print(f"  {len(report.links)} people with records in both CRMs or objects; {len(report.reviews)} "
                  f"borderline pairs for review", highlight=False, markup=False)
    shown = 0
    for merge in report.merges:
        for loser, (score, reasons) in merge.evidence.items():
            if shown < 2:
                console.print(f"    {loser} -> {merge.plan.survivor}: score {score:.1f} ({reasons})", highlight=False,
                              markup=False)
                shown += 1


DEMO_GOVERNANCE = (
    ("governance_finding", "gate_flagged", "Stage gate flagged"),
    ("stage_reset", None, "Stage gate enforced"),
    ("approval_requested", None, "Approval requested"),
    ("approval_recorded", None, "Approval recorded"),
    ("handed_off", "closed_won", "Closed Won handed to Customer Success"),
)
"""What the demo shows of deal governance: (audit action, code or kind, heading)."""


def _demo_governance(engine: Engine) -> None:
    """One of each governance decision the syncs made, from the audit log, and how many there were."""
    from connector.pipeline.deals import governance_examples

    examples = governance_examples(engine, DEMO_GOVERNANCE)
    console.print("\n[bold]Deals[/bold]: stage gates, approvals and handoffs (config/rules/stages.yaml, "
                  "approvals.yaml, handoffs.yaml)")
    for (_, _, heading), (count, entry) in zip(DEMO_GOVERNANCE, examples, strict=True):
        if entry is None:
            console.print(f"  {heading}: none", highlight=False, markup=False)
            continue
        detail = entry.detail or {}
        what = (detail.get("message") or detail.get("reason") or
                (f"{detail.get('matrix')} {detail.get('value')} by {detail.get('approved_by') or detail.get('approver')}"
                 if "matrix" in detail else "") or
                f"to {detail.get('to')} ({detail.get('why')}), kickoff due {str(detail.get('due'))[:10]}, "
                f"tasks: {', '.join(detail.get('tasks') or [])}")
        if entry.action == "stage_reset":
            what = f"{detail.get('from')} -> {detail.get('to')}: {what}"
        console.print(f"  {heading} ({count} in all): {entry.connection} {entry.object} {entry.crm_id}",
                      highlight=False, markup=False)
        console.print(f"    {what}", highlight=False, markup=False)
        if detail.get("task"):
            console.print(f"    task for {detail.get('assignee')}: {detail.get('task')}", highlight=False,
                          markup=False)
        elif detail.get("task_to"):
            console.print(f"    approval task for {detail.get('task_to')}", highlight=False, markup=False)


def _demo_real_time(config: RelayConfig, engine: Engine, group: Any) -> None:
    """A lead created in the sandbox HubSpot reaches Relay by webhook and gets its owner, score, task and alerts."""
    import httpx

    from connector.web.app import create_app
    from crm_sandbox.runner import SandboxServer

    portal, sink = group["hubspot"], group.sandboxes.get("notify")
    console.print("\n[bold]Real time[/bold]: a lead created in HubSpot reaches Relay by webhook (relay serve)")
    app = create_app(config, engine, decide=True)
    relay = SandboxServer(app, port=0, name="relay").start()
    try:
        portal.webhooks.url = f"{relay.url}/webhooks/hubspot"
        before = len(sink.messages.all()) if sink is not None else 0
        api = httpx.Client(base_url=portal.url, headers={"Authorization": "Bearer sandbox-token"}, timeout=10)
        started = time.monotonic()
        contact = api.post("/crm/v3/objects/contacts", json={"properties": {
            "email": "ada.realtime@initech.example", "firstname": "Ada", "lastname": "Realtime",
            "jobtitle": "VP of Sales", "company": "Initech", "country": "United States", "phone": "+1 415 555 0100",
            "demo_requested": "true", "pricing_page_visits": "3", "num_conversion_events": "2"}}).json()["id"]
        shown: dict[str, Any] = {}
        while time.monotonic() - started < 15 and not shown.get("hubspot_owner_id"):
            time.sleep(0.05)
            shown = api.get(f"/crm/v3/objects/contacts/{contact}", params={
                "properties": "hubspot_owner_id,relay_score,relay_score_category,relay_routing_reason"}).json().get(
                "properties", {})
        took = time.monotonic() - started
        if not shown.get("hubspot_owner_id"):
            console.print(f"  contact {contact}: no owner written within 15 s (see relay's log)", highlight=False)
            return
        console.print(f"  contact {contact} Ada Realtime (Initech): owner {shown['hubspot_owner_id']} written back "
                      f"{took:.2f} s after it was created; score {shown.get('relay_score')} "
                      f"({shown.get('relay_score_category')})", highlight=False, markup=False)
        console.print(f"    why: {shown.get('relay_routing_reason')}", highlight=False, markup=False)
        deadline = time.monotonic() + 5
        while sink is not None and time.monotonic() < deadline and not any(
                "Ada Realtime" in m.text for m in sink.messages.all()[before:]):
            time.sleep(0.05)
        if sink is not None:
            told = [m for m in sink.messages.all()[before:] if "Ada Realtime" in m.text]
            channels = ", ".join(sorted({m.channel for m in told})) or "none"
            console.print(f"    alerts in the notification sink: {len(told)} ({channels}) at {sink.url}/messages",
                          highlight=False, markup=False)
        api.close()
    finally:
        relay.stop()
        app.state.event_pump.stop()


def _print_rerun(summary: SyncSummary) -> None:
    console.print(
        f"  {summary.connection}: read {summary.records_read:,}, newly routed {sum(summary.routed.values())}, "
        f"owners taken from the other CRM {summary.propagated}, "
        f"records updated {summary.records_updated}, tasks created {summary.tasks_created}, "
        f"API calls {summary.api_call_total}",
        highlight=False, markup=False,
    )


def _print_examples(summary: SyncSummary) -> None:
    if not summary.examples:
        return
    console.print(f"[bold]Example decisions[/bold] (as the rep sees them in {summary.connection}):")
    for ex in summary.examples[:5]:
        company = f", {ex.company}" if ex.company else ""
        console.print(f"  [cyan]{escape(f'{ex.object} {ex.crm_id}')}[/cyan] {escape(ex.name + company)}",
                      highlight=False)
        console.print(f"    score {ex.score}, category {ex.category} -> owner {ex.owner_email or 'none'}",
                      highlight=False, markup=False)
        console.print(f"    why: {ex.reason or '-'}", highlight=False, markup=False)
        if ex.sla_due:
            due = datetime.fromisoformat(ex.sla_due).strftime("%Y-%m-%d %H:%M UTC")
            console.print(f"    SLA tier {ex.tier}: respond by {due}", highlight=False, markup=False)
    console.print()


@clocks_app.command("list")
def clocks_list(
    connection: Annotated[str | None, typer.Option(help="Only this connection's clocks.")] = None,
    due: Annotated[bool, typer.Option("--due", help="Only the clocks with a step due now.")] = False,
    limit: Annotated[int, typer.Option(min=1, help="At most this many clocks.")] = 100,
) -> None:
    """The open SLA clocks, next due first: record, owner, tier, start, first touch, steps fired, next step."""
    from connector.pipeline.clocks import list_clocks

    engine = _open_store_or_exit()
    try:
        clocks = list_clocks(engine, connection=connection, due=due, limit=limit)
    finally:
        engine.dispose()
    table = Table("clock", "record", "owner", "tier", "source", "started (UTC)", "stage", "first touch (UTC)",
                  "fired", "next due (UTC)", box=None)
    for clock in clocks:
        table.add_row(str(clock.id), escape(clock.label), escape(clock.owner_email), escape(clock.tier),
                      escape(clock.source), _when(clock.started_at), clock.stage, _when(clock.first_touch_at),
                      escape(", ".join(clock.fired) or "-"), _when(clock.next_due_at))
    console.print(table if clocks else ("no SLA clock is due" if due else "no open SLA clocks"))


@clocks_app.command("fire")
def clocks_fire(
    connection: Annotated[str | None, typer.Option(help="Only this connection's clocks.")] = None,
) -> None:
    """Fire the SLA steps due now: reminders, escalations, re-queues, returns to nurture (the worker does it every minute).

    Idempotent: a step fires once however often this runs. Exit codes: 0 done; 1 a
    connection's clocks could not fire (named; what was committed is sent later).
    """
    from connector.pipeline.clocks import fire_due_clocks

    config = _load_config_or_exit()
    if connection is not None:
        _require_connection(config, connection)
    engine = _open_store_or_exit()
    try:
        summary = fire_due_clocks(config, engine, connection=connection)
    finally:
        engine.dispose()
    table = Table("step", "record", "owner", "for", "task", "problem", box=None)
    for step in summary.fired:
        table.add_row(step.step, escape(f"{step.connection}/{step.object}/{step.crm_id}"), escape(step.owner_email),
                      escape(step.notify_email or "-"), "yes" if step.task_key else "no", escape(step.problem or "-"))
    console.print(table if summary.fired else "no SLA step was due")
    for name, writes in summary.writes.items():
        console.print(f"{name}: records updated {writes.records_updated}, tasks created {writes.tasks_created}, "
                      f"refused {len(writes.write_failures)}", highlight=False, markup=False)
    for error in summary.errors:
        _error(error)
    if summary.errors:
        raise typer.Exit(1)


@app.command()
def events(
    limit: Annotated[int, typer.Option(min=1, help="At most this many stored events in one pass.")] = 1_000,
) -> None:
    """Decide what the CRMs pushed: the records named by stored webhook events, read by id and written back.

    One events run per connection, through the same decisions and write-back as a sync;
    the events are marked processed once their run succeeded.

    Exit codes: 0 done; 1 configuration, store or CRM error (the events stay stored);
    3 a sync of the connection is running (the events wait for the next pass).
    """
    from connector.adapters.errors import CrmError
    from connector.pipeline.events import process_events
    from connector.store.errors import SyncAlreadyRunning

    config = _load_config_or_exit()
    engine = _open_store_or_exit()
    try:
        runs = process_events(config, engine, limit=limit)
    except SyncAlreadyRunning as exc:
        _error(f"{exc}; the events stay stored for the next pass")
        raise typer.Exit(3) from None
    except CrmError as exc:
        _error(f"{exc}; the events stay stored for the next pass")
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    if not runs:
        console.print("no stored events to process", highlight=False)
    for run in runs:
        summary = run.summary
        written = (f", records updated {summary.records_updated}, tasks created {summary.tasks_created}, "
                   f"API calls {summary.api_call_total}") if summary is not None else ""
        events_word = "event" if run.events == 1 else "events"
        records_word = "record" if run.records == 1 else "records"
        echoes = f" ({run.echoes} of them Relay's own writes coming back, not read)" if run.echoes else ""
        if run.own_writes:
            echoes += f" ({run.own_writes} {'record' if run.own_writes == 1 else 'records'} saved only by Relay's " \
                      "own user, not read)"
        console.print(f"{run.connection}: {run.events} {events_word}{echoes}, {run.records} {records_word} read by id "
                      f"and decided{written}", highlight=False, markup=False)


@dedupe_app.command("report")
def dedupe_report_command(
    out: Annotated[Path, typer.Option(help="Where to write the report (CSV: action, set, record, score, reasons, "
                                           "changes).")] = Path("dedupe-report.csv"),
) -> None:
    """What merging the duplicates would do, from the records the last syncs read; nothing is written.

    Every live person of every connection in the store goes through the matcher (rules/matching.yaml).
    A set of records of one CRM object is a merge (the survivor and each field's winning value, by
    the survivorship rules); a person in several objects or CRMs is a link; borderline pairs are
    review items. Says whether the blast-radius guard (merge_guard) would stop the merges.
    """
    from connector.pipeline.dedupe import dedupe_report, write_dedupe_report

    config = _load_config_or_exit()
    engine = _open_store_or_exit()
    started = time.perf_counter()
    with err_console.status("matching the people in the store"):
        report = dedupe_report(config, engine)
    rows = write_dedupe_report(out, report)
    console.print(f"{report.records:,} people records, {report.candidate_pairs:,} pairs compared, "
                  f"{time.perf_counter() - started:.1f} s", highlight=False, markup=False)
    for source, (sets, away) in report.merges_by_source().items():
        console.print(f"  merge {source}: {sets:,} duplicate sets, {away:,} records merged away", highlight=False,
                      markup=False)
    if not report.merges:
        console.print("  merge: no duplicates within one CRM object", highlight=False, markup=False)
    console.print(f"  link: {len(report.links):,} people with records in several objects or CRMs", highlight=False,
                  markup=False)
    console.print(f"  review: {len(report.reviews):,} borderline pairs for a data steward", highlight=False,
                  markup=False)
    if report.guard:
        console.print(f"blast-radius guard: would stop: {report.guard}", highlight=False, markup=False)
    else:
        console.print(f"blast-radius guard: within limits ({report.merged_away:,} records merged away)",
                      highlight=False, markup=False)
    console.print(f"report: {out} ({rows:,} rows); nothing was written to a CRM", highlight=False, markup=False)


@dedupe_app.command("run")
def dedupe_run_command() -> None:
    """Act on the duplicates as each connection's `duplicates` setting in relay.yaml says.

    report: nothing; merge: the CRM merges each set (the survivor takes the winning field values);
    flag: each duplicate gets a task for its owner naming the record it duplicates. Every set is
    recorded before its CRM is asked and acted on once; the blast-radius guard (merge_guard in
    rules/matching.yaml) stops the whole run when it would merge too much. Exit codes: 0 done;
    1 configuration or store; 3 stopped by the guard; 4 some sets failed (named).
    """
    from connector.pipeline.merges import run_dedupe

    config = _load_config_or_exit()
    engine = _open_store_or_exit()
    with err_console.status("matching the people in the store"):
        run = run_dedupe(config, engine)
    if run.busy:
        console.print("another dedupe pass is running (a worker's, or a sync's): this one did nothing",
                      highlight=False, markup=False)
        return
    if run.stopped:
        _error(f"blast-radius guard: nothing merged: {run.stopped}; look at relay dedupe report, then raise "
               f"merge_guard in rules/matching.yaml if the merges are right")
        raise typer.Exit(3)
    sources = sorted({*run.merged, *run.flagged, *run.reported, *run.already})
    for source in sources:
        console.print(f"  {source}: merged {run.merged[source]:,}, flagged {run.flagged[source]:,}, "
                      f"left (report only) {run.reported[source]:,}, done before {run.already[source]:,}",
                      highlight=False, markup=False)
    if not sources:
        console.print("no duplicates within one CRM object", highlight=False, markup=False)
    if run.linked:
        console.print(f"identity graph: {run.linked:,} records joined the person they are (decided as one from the "
                      f"next sync of each)", highlight=False, markup=False)
    if run.reviews_queued:
        console.print(f"review queue: {run.reviews_queued:,} new borderline pairs (relay dedupe reviews)",
                      highlight=False, markup=False)
    if run.review_tasks or run.reviews_decided:
        console.print(f"data steward: {run.review_tasks:,} review tasks created, {run.reviews_decided:,} answers "
                      f"read back", highlight=False, markup=False)
    for failure in run.failures:
        _error(f"failed: {failure}")
    if run.failures:
        raise typer.Exit(4)


@dedupe_app.command("reviews")
def dedupe_reviews_command(
    all_items: Annotated[bool, typer.Option("--all", help="Also the decided items.")] = False,
) -> None:
    """The review queue: borderline pairs for a data steward, both records side by side, with the reasons."""
    from connector.pipeline.dedupe import review_rows

    engine = _open_store_or_exit()
    rows = review_rows(engine, open_only=not all_items)
    if not rows:
        console.print("no review items" + ("" if all_items else " open"), highlight=False, markup=False)
        return
    table = Table("id", "status", "score", "left", "right", "reasons", box=None, show_edge=False)
    for row in rows:
        table.add_row(*row)
    console.print(table)


@dedupe_app.command("decide")
def dedupe_decide_command(
    review_id: Annotated[int, typer.Argument(help="The review item (relay dedupe reviews).")],
    decision: Annotated[str, typer.Argument(help="same or different")],
    by: Annotated[str, typer.Option(help="Who decides (kept with the decision).")] = os.environ.get("USER", "steward"),
) -> None:
    """A data steward's decision on a review item: it binds every later match and is never asked again."""
    from connector.store.db import session_factory
    from connector.store.repositories.merges import Reviews

    if decision not in ("same", "different"):
        _error(f"the decision is 'same' or 'different', not {decision!r}")
        raise typer.Exit(2)
    engine = _open_store_or_exit()
    try:
        with session_factory(engine).begin() as session:
            item = Reviews(session).decide(review_id, decision == "same", by)
    except KeyError as exc:
        _error(exc.args[0])
        raise typer.Exit(2) from None
    console.print(f"review {item.id}: {item.left_key} and {item.right_key} are "
                  f"{'the same person' if item.status == 'same' else 'two people'} (by {item.decided_by})",
                  highlight=False, markup=False)


report_app = typer.Typer(help="Reports from what the store holds (no CRM is called).", no_args_is_help=True,
                         rich_markup_mode=None)
app.add_typer(report_app, name="report")
_MARKS = {"pass": "[green]pass[/green]", "miss": "[red]miss[/red]", "n/a": "n/a"}


@report_app.command("handoffs")
def report_handoffs_command(
    connection: Annotated[str | None, typer.Option(help="Only this connection (default: every one).")] = None,
    since: Annotated[datetime | None, typer.Option(
        metavar="DATE", formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"],
        help="Only what started on or after DATE (UTC, YYYY-MM-DD).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Handoff metrics per transition, each with its SOP target and pass or miss: lead -> owner (time to
    first touch, lead acceptance), the funnel (Lead -> MQL -> SQL -> Opportunity -> Closed Won), opportunity
    -> closed (governance findings, approvals), Closed Won -> Customer Success (handoff completeness, time to
    kickoff, kickoff on time) and Closed Lost (loss reason recorded). Read from the store only."""
    from datetime import UTC

    from connector.pipeline.handoff_report import handoff_report

    config = _load_config_or_exit()
    if connection is not None:
        _require_connection(config, connection)
    engine = _open_store_or_exit()
    try:
        report = handoff_report(engine, config=config, now=datetime.now(UTC), connection=connection,
                                since=since.replace(tzinfo=UTC) if since is not None else None)
    finally:
        engine.dispose()
    if as_json:
        _print_json(report.as_dict())
        return
    scope = (f"{'connection ' + connection if connection else 'every connection'}, "
             f"{'since ' + report.since.strftime('%Y-%m-%d %H:%M') + ' UTC' if report.since else 'all time'}")
    if report.empty:
        console.print(f"no SLA clocks, leads, deals, governance findings, approvals or handoffs in the store "
                      f"({scope}): nothing to report yet (relay sync reads them)", highlight=False, markup=False)
        return
    console.print(f"handoff metrics ({scope}) at {_when(report.now)} UTC", highlight=False, markup=False)
    for key, title, metrics in report.sections():
        table = Table("metric", "value", "target", "", title=title, title_justify="left", box=None)
        for metric in metrics:
            table.add_row(escape(metric.label), escape(metric.shown()),
                          escape(metric.target.describe()) if metric.target else "",
                          _MARKS[metric.status] if metric.status else "")
        console.print(table)
        if key == "opportunity_to_closed" and report.deals.findings:
            codes = Table("finding", "open", "resolved", box=None)
            for code, counts in report.deals.findings.items():
                codes.add_row(escape(code), f"{counts.get('open', 0):,}", f"{counts.get('resolved', 0):,}")
            console.print(codes)
    for note in report.notes:
        console.print(f"note: {note}", highlight=False, markup=False)


@app.command("backtest")
def backtest_command(
    since: Annotated[datetime, typer.Option(
        metavar="DATE", formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"],
        help="Replay the people a sync read on or after DATE (UTC, YYYY-MM-DD).")],
    rules: Annotated[Path | None, typer.Option(
        metavar="DIR", help="The candidate rules: a rules directory like config/rules (or a config directory "
                            "holding one). Default: the current rules against themselves.")] = None,
    connection: Annotated[str | None, typer.Option(help="Only this connection's people (default: every one).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON (every owner change).")] = False,
    save: Annotated[bool, typer.Option("--save", help="Also keep the report in the store, for the dashboard "
                                                      "(/dashboard/backtest) and the admin API.")] = False,
) -> None:
    """Replay the stored people of a period under the current rules and a candidate rule set; report what
    would change: owners, tiers, SLA due times, load per rep, round-robin fairness, nurture and unassigned.
    Nothing is written to a CRM, nor to the store unless --save keeps the report (records named by CRM id,
    without the people's emails or names)."""
    from datetime import UTC

    from connector.config.diff import RuleSourceError, load_rules_dir
    from connector.config.problems import ConfigError
    from connector.pipeline.backtest import backtest, headline, text_sections

    config = _load_config_or_exit()
    if connection is not None:
        _require_connection(config, connection)
    candidate = None
    if rules is not None:
        try:
            candidate = load_rules_dir(rules)
        except RuleSourceError as exc:
            _error(exc)
            raise typer.Exit(2) from None
        except ConfigError as exc:
            err_console.print(f"[red]candidate rules {escape(str(rules))} are invalid ({len(exc.problems)} problem(s)):[/red]")
            for problem in exc.problems:
                err_console.print(f"  {problem}", markup=False, highlight=False)
            raise typer.Exit(1) from None
    engine = _open_store_or_exit()
    saved: dict[str, Any] | None = None
    try:
        report = backtest(engine, config, since=since.replace(tzinfo=UTC), candidate=candidate,
                          candidate_source=str(rules) if rules is not None else None, connection=connection)
        if save:
            import getpass

            from connector.pipeline.backtest_reports import save_report

            try:
                user = getpass.getuser() or "cli"
            except (KeyError, OSError):  # no login name and no passwd entry (a container's bare uid)
                user = "cli"
            saved_id = save_report(engine, report, created_by=user, now=datetime.now(UTC))
            saved = {"id": saved_id, "dashboard": f"/dashboard/backtest/{saved_id}",
                     "api": f"/api/v1/backtests/{saved_id}"}
    finally:
        engine.dispose()
    if as_json:
        _print_json({**report.as_dict(), **({"saved": saved} if saved else {})})
        return
    for line in headline(report):
        console.print(line, highlight=False, markup=False)
    for section in text_sections(report):
        table = Table(title=section.title, title_justify="left", box=None, show_header=any(section.columns))
        for i, column in enumerate(section.columns):
            table.add_column(column, no_wrap=i < len(section.columns) - 1)  # ids and emails whole; the last wraps
        for row in section.rows:
            table.add_row(*(escape(cell) for cell in row))
        console.print(table)
    for note in report.notes:
        console.print(f"note: {note}", highlight=False, markup=False)
    if saved:
        console.print(f"saved as backtest {saved['id']}: {saved['dashboard']} on relay serve's dashboard "
                      f"(GET {saved['api']})", highlight=False, markup=False)


@app.command()
def match(
    file: Annotated[Path, typer.Argument(help="The people (CSV, UTF-8, a header row): id plus any of first_name, "
                                              "last_name, email, phone, company, website, title, country, state, "
                                              "source.")],
    out: Annotated[Path, typer.Option(help="Where to write id,cluster for every row.")],
    pairs: Annotated[Path | None, typer.Option(help="Also write the matched and borderline pairs: ids, score, "
                                                    "same/review, the reasons.")] = None,
    threshold: Annotated[float | None, typer.Option(help="Score from which a pair is the same person (default: "
                                                         "match_at in rules/matching.yaml).")] = None,
) -> None:
    """Find the duplicates in a list of people (before an import): the matcher a sync uses, on a file.

    Every row gets a cluster (the id of the cluster's first row; a row alone is its own). A row
    that cannot be read (not UTF-8, the wrong number of columns) is named with its line number in
    FILE.bad-rows.csv and kept alone. Exit codes: 0 done; 1 the file or matching.yaml cannot be
    used (named); 4 done, but some rows could not be read.
    """
    from connector.config.loader import load_matching_rules
    from connector.config.problems import ConfigError
    from connector.pipeline.match_file import (
        MatchFileError,
        match_file,
        write_bad_rows,
        write_clusters,
        write_pairs,
    )

    try:
        rules = load_matching_rules()
    except ConfigError as exc:
        _error(exc)
        raise typer.Exit(1) from None
    if threshold is not None:
        if threshold <= rules.review_at:
            _error(f"--threshold {threshold} must be above review_at ({rules.review_at}) of rules/matching.yaml")
            raise typer.Exit(1)
        rules = rules.model_copy(update={"match_at": threshold})
    started = time.perf_counter()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed:,} rows"),
                  TimeElapsedColumn(), console=err_console, transient=True) as progress:
        reading = progress.add_task(f"reading {file.name}", total=None)
        try:
            matched = match_file(file, rules, progress=lambda done: progress.advance(reading, done))
        except MatchFileError as exc:
            _error(exc)
            raise typer.Exit(1) from None
        progress.update(reading, description="writing")
        write_clusters(out, matched.result)
        written_pairs = write_pairs(pairs, matched.result) if pairs is not None else None
    result = matched.result
    clusters = result.clusters()
    in_clusters = sum(len(ids) for ids in clusters.values())
    console.print(f"{file}: {matched.rows:,} rows, {len(clusters):,} clusters of more than one row holding "
                  f"{in_clusters:,} rows ({in_clusters - len(clusters):,} duplicates, "
                  f"{(in_clusters - len(clusters)) / max(matched.rows, 1):.1%}); "
                  f"{result.pairs_per_record():.1f} candidate pairs a row; {time.perf_counter() - started:.1f} s",
                  highlight=False, markup=False)
    console.print(f"clusters: {out}", highlight=False, markup=False)
    if pairs is not None:
        console.print(f"pairs: {pairs} ({written_pairs:,} at {rules.review_at} or more)", highlight=False,
                      markup=False)
    if matched.duplicate_ids:
        shown = ", ".join(matched.duplicate_ids[:5])
        console.print(f"ids used by more than one row: {len(matched.duplicate_ids):,} ({shown}"
                      f"{', ...' if len(matched.duplicate_ids) > 5 else ''})", highlight=False, markup=False)
    if matched.bad_rows:
        target = file.with_name(file.name + ".bad-rows.csv")
        write_bad_rows(target, matched.bad_rows)
        first = matched.bad_rows[0]
        console.print(f"rows kept alone, unreadable: {len(matched.bad_rows):,} (line {first.line}: {first.reason}); "
                      f"all in {target}", highlight=False, markup=False)
        raise typer.Exit(4)


@app.command("import")
def import_list(
    file: Annotated[Path, typer.Argument(help="The CSV list (UTF-8, a header row naming the columns).")],
    source: Annotated[str, typer.Option(help="The capture source in relay.yaml (e.g. events).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check every row and show what would be created or "
                                                            "updated; write nothing.")] = False,
    errors: Annotated[Path | None, typer.Option(help="Where to write the bad rows (CSV: line, column, value, "
                                                     "reason); default FILE.errors.csv.")] = None,
) -> None:
    """Import a list of people (an event, a trade show): each found by email or created, then decided.

    Columns are matched by name (email, first_name, last_name, company, title, phone, country,
    utm_source/medium/campaign/term/content, consent, consent_version, submission_id;
    "E-mail", "First Name"... work too). Every row is checked; bad rows go to the error file and
    never stop the others. Good rows are stored like form posts (a repeated row stores nothing),
    then found or created in batches and decided like pushed changes.

    Exit codes: 0 done; 1 the file, the configuration, the store or the CRM failed (named);
    2 an unknown source; 4 done, but some rows were bad or refused by the CRM.
    """
    from connector.pipeline.capture_import import ImportFileError, read_import, write_errors
    from connector.pipeline.context import utc_now

    config = _load_config_or_exit()
    if source not in config.relay.capture.sources:
        _error(f"no capture source {source!r} in relay.yaml (configured: "
               f"{', '.join(sorted(config.relay.capture.sources)) or 'none'})")
        raise typer.Exit(2)
    started = utc_now()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=err_console, transient=True) as progress:
        checking = progress.add_task(f"checking {file.name}", total=None)
        try:
            found = read_import(file, source, received_at=started,
                                progress=lambda done, total: progress.update(checking, completed=done, total=total))
        except ImportFileError as exc:
            _error(exc)
            raise typer.Exit(1) from None
    bad = len(found.bad_rows)
    console.print(f"{file}: {found.rows} rows, {len(found.submissions)} good, {bad} bad", highlight=False,
                  markup=False)
    if found.ignored_columns:
        console.print(f"columns ignored (no such field): {', '.join(found.ignored_columns)}", highlight=False,
                      markup=False)
    if found.errors:
        target = errors or file.with_name(file.name + ".errors.csv")
        write_errors(target, found.errors)
        console.print(f"bad rows: {target} ({len(found.errors)} problems)", highlight=False, markup=False)
    refused = _import_dry_run(config, source, found.submissions) if dry_run else _import_store_and_decide(
        config, source, found.submissions, started)
    if bad or refused:
        raise typer.Exit(4)


def _import_dry_run(config: RelayConfig, source: str, submissions: list[Any]) -> int:
    """Find the people of ``submissions`` and show what an import would create or update; write nothing."""
    from connector.adapters.errors import CrmError
    from connector.pipeline.capture import capture_changes
    from connector.pipeline.connections import open_adapter
    from connector.pipeline.context import utc_now
    from connector.store.repositories import InboxEvent

    connection = config.relay.capture.sources[source].connection
    now = utc_now()
    events = [InboxEvent(i, "capture", taken.key, {"connection": connection, "event": taken.as_json()}, now, None)
              for i, taken in enumerate(submissions, start=1)]
    if not events:
        console.print("dry run: nothing to import", highlight=False)
        return 0
    adapter = open_adapter(config, connection)
    try:
        with err_console.status(f"finding {len(events)} people in {connection}"):
            result = capture_changes(config, connection, adapter, events, now=now, dry_run=True)
    except CrmError as exc:
        _error(exc)
        raise typer.Exit(1) from None
    finally:
        adapter.close()
    table = Table("email", "action", "object", "record", "fields", box=None)
    for plan in result.plans[:50]:
        table.add_row(escape(plan.email), plan.action, escape(plan.object), escape(plan.crm_id or "(new)"),
                      escape(", ".join(f"{k}={v}" for k, v in plan.fields.items())))
    console.print(table)
    if len(result.plans) > 50:
        console.print(f"... and {len(result.plans) - 50} more", highlight=False)
    console.print(f"dry run: would create {result.count('create')}, update {result.count('update')}, leave "
                  f"{result.count('unchanged')} unchanged in {connection}; nothing was written", highlight=False,
                  markup=False)
    return 0


def _import_store_and_decide(config: RelayConfig, source: str, submissions: list[Any], started: datetime) -> int:
    """Store the good rows in the inbox, then decide everything stored; returns how many the CRM refused."""
    from sqlalchemy import select

    from connector.adapters.errors import CrmError
    from connector.pipeline.capture import store_submissions
    from connector.pipeline.events import process_events
    from connector.pipeline.intake import InboxUnavailable
    from connector.store.db import session_factory
    from connector.store.errors import SyncAlreadyRunning
    from connector.store.models import QuarantineRow

    connection = config.relay.capture.sources[source].connection
    engine = _open_store_or_exit()
    try:
        new = 0
        for start in range(0, len(submissions), 1_000):
            try:
                new += store_submissions(config, engine, submissions[start:start + 1_000], now=started).new
            except InboxUnavailable as exc:
                _error(f"{exc}; {start} rows were stored, import the file again to store the rest")
                raise typer.Exit(1) from None
        console.print(f"stored {new} new submissions ({len(submissions) - new} already stored)", highlight=False)
        updated = tasks = runs = 0
        with err_console.status("finding, creating and deciding the people"):
            try:
                while passed := process_events(config, engine):
                    runs += len(passed)
                    for run in passed:
                        if run.summary is not None:
                            updated += run.summary.records_updated
                            tasks += run.summary.tasks_created
            except (CrmError, SyncAlreadyRunning) as exc:
                _error(f"{exc}; the submissions stay stored for the next pass (relay events)")
                raise typer.Exit(1) from None
        with session_factory(engine).begin() as session:
            refused = session.scalars(select(QuarantineRow).where(
                QuarantineRow.connection == connection, QuarantineRow.at >= started,
                QuarantineRow.reason.like(f"capture {source}:%"))).all()
    finally:
        engine.dispose()
    console.print(f"decided: {runs} events runs, {updated} records updated, {tasks} tasks created", highlight=False)
    if refused:
        console.print(f"refused by {connection} ({len(refused)}; quarantined):", highlight=False)
        for row in refused[:20]:
            console.print(f"  {row.payload.get('submission', {}).get('origin', '?')}: {row.reason}", highlight=False,
                          markup=False)
    return len(refused)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65_535, help="Port to listen on (0: one the OS picks).")] = 8700,
    decide: Annotated[bool, typer.Option(
        "--decide/--no-decide",
        help="Decide stored events as they arrive, in this process (default); --no-decide hands each delivery to "
             "relay worker (many workers on RELAY_HUEY_URL=redis://...).",
    )] = True,
) -> None:
    """Serve Relay over HTTP: POST /webhooks/<crm> (events stored before the 200), /healthz, /metrics, /api/v1.

    Webhook signatures cover the URL the CRM called: behind a proxy, set RELAY_PUBLIC_URL.
    """
    import uvicorn

    from connector.config.settings import get_settings
    from connector.privacy.logfilter import uvicorn_log_config
    from connector.web.app import create_app

    config = _load_config_or_exit()
    engine = _open_store_or_exit()
    settings = get_settings()
    root = logging.getLogger()
    root.setLevel(min(root.level, logging.INFO))  # every refused webhook is a log line
    console.print(f"Relay serve on http://{host}:{port} (webhooks: POST /webhooks/<crm>); Ctrl-C to stop",
                  highlight=False)
    on_stored = None
    start_sync = None
    if not decide:
        from jobs.tasks import jobs

        on_stored = jobs.process_events_now  # a job each delivery; every worker claims its own share

        def start_sync(connection: str, full: bool) -> str:  # the admin API's syncs go to the workers too
            jobs.sync_connection(connection, full)
            return "queued for relay worker"
    try:
        uvicorn.run(create_app(config, engine, public_url=settings.public_url, decide=decide, on_stored=on_stored,
                               start_sync=start_sync, warm_dashboard=True),
                    host=host, port=port, log_level="info", access_log=False,
                    log_config=uvicorn_log_config())  # uvicorn's loggers go to Relay's masked handler
    finally:
        engine.dispose()


def _console_or_exit() -> Any:
    from connector.pipeline.console import Console
    from connector.pipeline.context import utc_now

    return Console(_load_config_or_exit(), _open_store_or_exit(), clock=utc_now)


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Who (a person or a system), unique among active users.")],
    role: Annotated[str, typer.Option(help="admin, manager, rep, marketing or read-only (seed 002 access table).")],
    email: Annotated[str | None, typer.Option(
        help="Their CRM user's email: a rep's or marketing user's own records are the ones assigned to it.")] = None,
) -> None:
    """Create an API user and print its token (shown once: Relay keeps only its hash)."""
    relay = _console_or_exit()
    try:
        user, token = relay.add_user(name, role, email)
    except ValueError as exc:
        _error(exc)
        raise typer.Exit(2) from None
    finally:
        relay.engine.dispose()
    console.print(f"API user {user['name']} ({user['role']}{', ' + user['email'] if user['email'] else ''}) added. "
                  "Its token, shown only now:", highlight=False)
    _write_plain(token + "\n")


@users_app.command("list")
def users_list(
    revoked: Annotated[bool, typer.Option("--revoked", help="Show revoked users too.")] = False,
) -> None:
    """List API users (never their tokens: the first characters tell them apart)."""
    relay = _console_or_exit()
    try:
        users = relay.users(include_revoked=revoked)
    finally:
        relay.engine.dispose()
    table = Table("name", "role", "email", "token", "created", "last used", "revoked")
    for user in users:
        when = [(user[k] or "-")[:19].replace("T", " ") for k in ("created_at", "last_used_at", "revoked_at")]
        table.add_row(user["name"], user["role"], user["email"] or "-", user["token_prefix"] + "...", *when)
    console.print(table)


@users_app.command("revoke")
def users_revoke(name: Annotated[str, typer.Argument(help="The active user to revoke.")]) -> None:
    """Revoke an API user: its token stops working at once."""
    relay = _console_or_exit()
    try:
        found = relay.revoke_user(name)
    finally:
        relay.engine.dispose()
    if found is None:
        _error(f"no active API user {name!r} (relay users list)")
        raise typer.Exit(1)
    console.print(f"API user {name} revoked.", highlight=False)


@app.command()
def worker(
    workers: Annotated[int, typer.Option(help="Worker threads.")] = 2,
) -> None:
    """Run the job worker: scheduled syncs of every connection (Huey consumer)."""
    from huey.consumer import Consumer

    from jobs.tasks import jobs

    root = logging.getLogger()
    root.setLevel(min(root.level, logging.INFO))  # the worker logs each run it starts and finishes
    console.print(f"Relay worker: {workers} thread(s) on {type(jobs.huey.storage).__name__}; Ctrl-C to stop")
    Consumer(jobs.huey, workers=workers, worker_type="thread").run()


def _subject_email_or_exit(email: str) -> str:
    if "@" not in email or len(email.strip()) < 3:
        _error(f"{email!r} is not an email address: a person is found by their email")
        raise typer.Exit(2)
    return email.strip()


def _print_subject(report: Any, *, done: str | None) -> None:
    """The rows found per table (connector/privacy/subject.py's SubjectReport) and what was done to them."""
    console.print(f"person {report.email} (pseudonymous key {report.subject}): {report.found} rows in Relay's store"
                  + (f", records {', '.join(report.records)}" if report.records else ""), highlight=False, markup=False)
    if report.found:
        table = Table("table", "found", *((done, "deleted", "cancelled", "note") if done else ()))
        for name, finding in report.tables.items():
            if finding.rows:
                counts = (str(finding.erased), str(finding.deleted), str(finding.cancelled), finding.note)
                table.add_row(name, str(len(finding.rows)), *(counts if done else ()))
        console.print(table)
    console.print("The CRMs are not touched: erasing the person in Salesforce or HubSpot is the CRM's own process "
                  "(its GDPR delete); Relay reads them again if a CRM still holds them.", highlight=False)


@app.command("export-person")
def export_person(
    email: Annotated[str, typer.Argument(help="The person's email address.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document with every row, by table.")] = False,
) -> None:
    """A data subject's access request: every row of Relay's store that names the person.

    Found by email through the identity graph (their relay id and every record linked to it, in every
    CRM) and by their email in payloads and texts: snapshots, assignments, SLA clocks, dispositions,
    audit entries, outbox messages, alerts, quarantined records, webhook and form payloads,
    enrichment answers. Relay's store only, not the CRMs. Audited (subject_exported) with a
    pseudonymous key only.
    """
    from connector.privacy.subject import export_subject

    address = _subject_email_or_exit(email)
    engine = _open_store_or_exit()
    try:
        report = export_subject(engine, address)
    finally:
        engine.dispose()
    if as_json:
        _print_json(report.as_json())
        return
    _print_subject(report, done=None)
    for name, finding in report.tables.items():
        if finding.rows:
            console.print(f"\n{name} ({len(finding.rows)})", highlight=False, markup=False)
            for row in finding.rows:
                console.print("  " + json.dumps(row, ensure_ascii=False, default=str), highlight=False, markup=False)


@app.command("forget-person")
def forget_person(
    email: Annotated[str, typer.Argument(help="The person's email address.")],
    yes: Annotated[bool, typer.Option("--yes", help="Erase without asking.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be erased; change nothing.")] = False,
) -> None:
    """A data subject's erasure request: their personal data erased from Relay's store, in one transaction.

    Snapshots lose their personal fields and their identity; the identity's email becomes a
    pseudonymous key; outbox messages, alerts, quarantined records, webhook and form payloads,
    merges, reviews and audit entries keep their rows with every personal value replaced by
    [erased] (the audit log through its one erasure UPDATE); unsent writes and alerts about them
    are cancelled, open SLA clocks closed, enrichment answers about them deleted. The CRMs are not
    touched (erasure there is the CRM's own process). Audited (subject_forgotten) with the
    pseudonymous key only. Exit 1 when not confirmed.
    """
    from connector.privacy.subject import forget_subject

    address = _subject_email_or_exit(email)
    engine = _open_store_or_exit()
    try:
        if not dry_run and not yes:
            planned = forget_subject(engine, address, dry_run=True)
            _print_subject(planned, done="to erase")
            if not planned.found:
                console.print("nothing to erase", highlight=False)
            if not typer.confirm(f"Erase {address}'s personal data from Relay's store?", default=False):
                _error("nothing erased")
                raise typer.Exit(1)
        report = forget_subject(engine, address, dry_run=dry_run)
    finally:
        engine.dispose()
    _print_subject(report, done="would erase" if dry_run else "erased")
    if dry_run:
        console.print("dry run: nothing was changed", highlight=False)
    else:
        console.print(f"erased; the request is audit entry {report.audit_id} (subject_forgotten, "
                      f"{report.subject})", highlight=False, markup=False)


retention_app = typer.Typer(help="Retention periods (config/rules/retention.yaml): archive, delete, suppress.",
                             no_args_is_help=True, rich_markup_mode=None)
app.add_typer(retention_app, name="retention")


def _retention_now(value: str | None) -> datetime:
    from datetime import UTC

    if value is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        _error(f"--now {value!r} is not an ISO 8601 time (e.g. 2031-06-01 or 2031-06-01T09:00:00Z)")
        raise typer.Exit(2) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@retention_app.command("run")
def retention_run(
    connection: Annotated[str | None, typer.Option(help="Only this connection's records (default: every one).")] = None,
    apply: Annotated[bool, typer.Option("--apply", help="Act: delete in the CRM, archive, suppress (default: "
                                                        "a dry run that writes nothing).")] = False,
    now: Annotated[str | None, typer.Option(metavar="ISO", help="Judge ages at this time (UTC when no offset; "
                                                                "default: now).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Apply the retention periods of retention.yaml (seed 002: customers 7 years then archive, prospects 2 years
    then delete, unsubscribed 5 years then suppress, employees 7 years after they left then archive) to the people
    Relay keeps: per class, who is due. A dry run unless --apply. Exit codes: 0 done; 1 configuration, store or CRM
    error; 4 applied, but the CRM refused some deletions (listed, audited retention_delete_failed)."""
    from connector.adapters.errors import CrmError
    from connector.pipeline.retention import last_scheduled_run, run_retention

    when = _retention_now(now)
    config = _load_config_or_exit()
    if connection is not None:
        _require_connection(config, connection)
    engine = _open_store_or_exit()
    try:
        report = run_retention(config, engine, now=when, apply=apply, connection=connection)
        last = last_scheduled_run(engine)
    except CrmError as exc:
        _error(exc)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    schedule = config.rules.retention.schedule
    if as_json:
        _print_json({**report.as_json(), "schedule": schedule.model_dump(), "last_scheduled_run": None if last is None
                     else {"slot": last.slot.isoformat(), "action": last.action, "detail": last.detail}})
    else:
        _print_retention(report)
        _print_retention_schedule(schedule, last)
    if report.failed:
        raise typer.Exit(4)


def _print_retention_schedule(schedule: Any, last: Any) -> None:
    """retention.yaml's schedule and what the worker's last scheduled run found (the audit log's entry)."""
    if not schedule.enabled:
        said = "schedule: off (retention.yaml schedule.enabled: false)"
    else:
        said = f"schedule: cron '{schedule.cron}' UTC, {'applied' if schedule.apply else 'a dry run'} (relay worker)"
    if last is None:
        said += "; no scheduled run yet"
    elif "error" in last.detail:
        said += f"; last scheduled run {_when(last.at)} UTC failed ({last.detail['error']}; see the worker's log)"
    else:
        counts = last.detail.get("done" if last.detail.get("apply") else "would_do", {})
        verb = "done:" if last.detail.get("apply") else "would"
        said += f"; last scheduled run {_when(last.at)} UTC: {verb} " + ", ".join(
            f"{action} {counts[action]}" for action in ("delete", "archive", "suppress") if action in counts)
    console.print(said, highlight=False, markup=False)


def _print_retention(report: Any) -> None:
    mode = "applied" if report.apply else "dry run: nothing is written"
    console.print(f"retention at {_when(report.now)} UTC ({mode}); connections: {', '.join(report.connections)}",
                  highlight=False, markup=False)
    table = Table("class", "people", "records", "due (people)", "due (records)", "action", "done before",
                  "done now" if report.apply else "would do", "refused", box=None)
    for name, tally in report.tallies.items():
        would = tally.acted if report.apply else tally.due_records - tally.done_before
        table.add_row(name, f"{tally.people:,}", f"{tally.records:,}", f"{tally.due_people:,}", f"{tally.due_records:,}",
                      escape(report.actions.get(name, "-")), f"{tally.done_before:,}", f"{would:,}", f"{tally.failed:,}")
    console.print(table)
    verbs = {"delete": "deleted" if report.apply else "would delete",
             "archive": "archived" if report.apply else "would archive",
             "suppress": "suppressed" if report.apply else "would suppress"}
    for person in report.due:
        verdict = person.verdict
        since = verdict.basis_at.date().isoformat() if verdict.basis_at else "-"
        due = verdict.due_at.date().isoformat() if verdict.due_at else "-"
        console.print(f" {verbs[verdict.action]}: {', '.join('/'.join(r) for r in person.pending)} "
                      f"({verdict.retention_class}, last activity {since}, due {due})", highlight=False, markup=False)
    for record, error in report.failed:
        _error(f"{record}: the CRM refused the deletion: {error}")
    if report.unreadable:
        console.print(f"note: {report.unreadable} stored snapshots no longer fit their mapping and were left alone",
                      highlight=False, markup=False)


def main() -> None:  # pragma: no cover - console-script shim
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
