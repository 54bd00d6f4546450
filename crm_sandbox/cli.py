"""``python -m crm_sandbox``: run the sandbox CRMs in the foreground until Ctrl-C.

A standalone command (argparse, nothing of Relay): it starts every sandbox in the registry (or those
named with ``--only``), prints what a client needs (URLs actually bound, ``export`` lines, the CA
to trust over TLS), serves until SIGINT or SIGTERM, then stops them and saves their state files.

Exit codes: 0 stopped by a signal; 1 a sandbox could not start (port in use, unreadable state file
or TLS directory); 2 bad arguments (each fault flag's problem is named).

``python -m crm_sandbox people --rows N --out people.csv --truth truth.csv`` writes person records
with ground truth for dedupe benchmarks instead (:mod:`crm_sandbox.seed.people`).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from types import FrameType
from typing import Any

from crm_sandbox.common import FaultSettings
from crm_sandbox.kinds import SandboxKind
from crm_sandbox.registry import SandboxGroup, available
from crm_sandbox.runner import SandboxServerError
from crm_sandbox.tls import SandboxTLSError

__all__ = ["build_parser", "fault_settings", "main"]

PROG = "python -m crm_sandbox"

#: Help of the fault flags, by ``FaultSettings`` field (the same flags as ``relay sandbox``, and the
#: malformed-answer faults besides).
FAULT_HELP = {
    "rate_limit": "probability of a 429 with Retry-After",
    "retry_after": "seconds announced in Retry-After",
    "server_error": "probability of a 503",
    "drop": "probability of a dropped connection (nothing applied)",
    "latency_ms": "latency added to every call, in ms",
    "partial_failure": "probability that a record of a batch write fails",
    "slow": "probability of a slow answer (delay drawn from --slow-ms)",
    "hold": "probability that an answer is held past the client's timeout (request applied)",
    "hold_seconds": "seconds a held answer is held",
    "lost_after_apply": "probability that a request is applied, then its connection closed unanswered",
    "invalid_json": "probability of a 200 whose body is not JSON",
    "html": "probability of a 200 HTML maintenance page",
    "truncated": "probability that a JSON answer is cut in half (request applied)",
    "error_200": "probability of a 200 carrying the CRM's error object",
    "repeat_page": "probability that a read page's next link serves the same page again",
    "missing_id": "probability that one record of a read page lacks its id",
    "wrong_types": "probability that one record of a read page has wrong-typed values",
}
_FAULT_DEFAULTS = {f.name: f.default for f in fields(FaultSettings) if f.name in FAULT_HELP}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _dest(kind: SandboxKind, option: str) -> str:
    return f"{kind.name}__{option}"


def build_parser(kinds: dict[str, SandboxKind] | None = None, prog: str = PROG) -> argparse.ArgumentParser:
    """The argument parser; per-sandbox flags (``--salesforce-port``, ``--hubspot-webhook-url``) come
    from the registry, so a third CRM's sandbox brings its own.

    Args:
        kinds: the sandbox kinds offered (default: the registry's).
        prog: the command's name in usage and error messages (``relay sandbox`` when Relay delegates).
    """
    kinds = available() if kinds is None else kinds
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run the sandbox CRMs (" + ", ".join(k.label for k in kinds.values()) + ") in the foreground "
        "until Ctrl-C; print the settings a client needs.",
        epilog="Exit codes: 0 stopped by Ctrl-C or SIGTERM, 1 a sandbox could not start, 2 bad arguments. "
        "See crm_sandbox/README.md.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default %(default)s)")
    parser.add_argument("--only", action="append", choices=list(kinds), metavar="NAME",
                        help=f"run only this sandbox (repeatable; one of {', '.join(kinds)}; default: all)")
    data = parser.add_argument_group("seed data and state")
    data.add_argument("--seed", type=int, default=42, help="seed of the generated data and of the faults (default %(default)s)")
    data.add_argument("--leads", type=int, default=500, help="leads to generate (HubSpot contacts alike; default %(default)s)")
    data.add_argument("--empty", action="store_true", help="start with no seeded records")
    data.add_argument("--state-dir", type=Path, metavar="DIR",
                      help="keep each sandbox's state in DIR/<name>.json (loaded at start, saved at stop)")
    tls = parser.add_argument_group("TLS")
    tls.add_argument("--tls", action="store_true",
                     help="serve HTTPS with a certificate from a throwaway CA (its path is printed)")
    tls.add_argument("--tls-dir", type=Path, metavar="DIR",
                     help="keep the CA and certificates in DIR (a CA already there is reused); default: a temporary directory")
    tls.add_argument("--tls-name", action="append", default=[], metavar="NAME",
                     help="another host name or IP the certificate is valid for (repeatable)")
    faults = parser.add_argument_group("faults (deterministic under --seed; change them at run time with PUT /__sandbox/faults)")
    for name, text in FAULT_HELP.items():
        default = _FAULT_DEFAULTS[name]
        faults.add_argument(_flag(name), type=type(default), default=default, metavar="N" if name.endswith("_ms") else "X",
                            help=f"{text} (default {default})")
    faults.add_argument("--slow-ms", type=int, nargs=2, default=[200, 2000], metavar=("MIN", "MAX"),
                        help="min and max delay of a slow answer, in ms (default 200 2000)")
    faults.add_argument("--fault-path", default="", metavar="REGEX", help="only paths matching REGEX get faults")
    output = parser.add_argument_group("output")
    output.add_argument("--json", action="store_true",
                        help="print the client settings as one JSON line instead of text (for scripts)")
    for kind in kinds.values():
        group = parser.add_argument_group(f"{kind.label} sandbox: {kind.description}" if kind.description else kind.label)
        group.add_argument(f"--{kind.name}-port", type=int, default=kind.default_port, metavar="PORT",
                           dest=_dest(kind, "port"), help="port; 0 lets the OS pick one (default %(default)s)")
        for option in kind.options:
            shown = f" (default {option.default})" if option.default is not None else ""
            group.add_argument(f"--{kind.name}-{option.flag}", type=option.type, default=None, dest=_dest(kind, option.name),
                               metavar=option.value_name, help=option.help + shown)
    return parser


def fault_settings(args: argparse.Namespace) -> tuple[FaultSettings, list[str]]:
    """The fault settings of the parsed flags, and their problems, each naming the flag."""
    settings = FaultSettings(
        **{name: getattr(args, name) for name in FAULT_HELP},
        slow_ms=list(args.slow_ms),
        path_pattern=args.fault_path,
        seed=args.seed,
    )
    problems = []
    for problem in settings.validate():
        for name in sorted((*FAULT_HELP, "slow_ms", "seed"), key=len, reverse=True):
            problem = problem.replace(f"{name}:", f"{_flag(name)}:").replace(f"{name}=", f"{_flag(name)}=")
        problems.append(problem.replace("path_pattern:", "--fault-path:"))
    return settings, problems


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Run the command; returns its exit code (argparse exits with 2 itself on bad arguments).

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).
        prog: the command's name in messages; another command line can delegate to this one.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["people"]:  # people-only records with ground truth (dedupe benchmarks)
        from crm_sandbox.seed.people import main as people_main

        return people_main(arguments[1:], prog=f"{prog} people")
    kinds = available()
    parser = build_parser(kinds, prog)
    args = parser.parse_args(arguments)
    faults, problems = fault_settings(args)
    if problems:
        parser.error("; ".join(problems))
    if args.leads < 0:
        parser.error(f"--leads: must be 0 or more, got {args.leads}")
    if args.seed < 0:
        parser.error(f"--seed: must be 0 or more, got {args.seed}")
    names = args.only or list(kinds)
    chosen = [kinds[name] for name in kinds if name in names]
    for kind in chosen:
        port = getattr(args, _dest(kind, "port"))
        if not 0 <= port <= 65535:
            parser.error(f"--{kind.name}-port: must be 0 to 65535, got {port}")
    options = {kind.name: {o.name: getattr(args, _dest(kind, o.name)) for o in kind.options} for kind in chosen}

    seed_data: Any = None
    if not args.empty:
        from crm_sandbox.seed import generate, summary

        seed_data = generate(seed=args.seed, leads=args.leads)
    group = SandboxGroup(
        [kind.name for kind in chosen],
        seed_data=seed_data,
        faults=faults,
        host=args.host,
        ports={kind.name: getattr(args, _dest(kind, "port")) for kind in chosen},
        state_dir=args.state_dir,
        tls=args.tls,
        tls_dir=args.tls_dir,
        tls_names=args.tls_name,
        options=options,
    )
    try:
        group.start()
    except (SandboxServerError, SandboxTLSError, ValueError, OSError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr, flush=True)
        return 1

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if args.json:
            print(json.dumps(_as_json(group)), flush=True)
        else:
            labels = ", ".join(kind.label for kind in chosen)
            print(f"sandbox CRMs running: {labels} (Ctrl-C to stop)", flush=True)
            if seed_data is not None:
                print(f"seed {args.seed}: {json.dumps(summary(seed_data))}")
            print()
            print(group.describe(), flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        group.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    saved = f"; state saved in {args.state_dir}" if args.state_dir is not None else ""
    print(f"sandboxes stopped{saved}", file=sys.stderr if args.json else sys.stdout, flush=True)
    return 0


def _as_json(group: SandboxGroup) -> dict[str, Any]:
    return {
        "sandboxes": {
            s.name: {
                "label": s.label,
                "base_url": s.base_url,
                "credentials": dict(s.credentials),
                "env": dict(s.env),
                "ledger_url": f"{s.base_url}/__sandbox/ledger",
                "faults_url": f"{s.base_url}/__sandbox/faults",
            }
            for s in group.client_settings()
        },
        "ca_bundle": str(group.ca_bundle) if group.ca_bundle is not None else None,
        "env": group.env(),
    }

