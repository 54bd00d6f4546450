"""Dedupe quality and cost on people with ground truth, at 10,000 to 1,000,000 records (issue 10).

For each size the people CSV and its truth come from ``python -m crm_sandbox people`` (seed 7 by
default; cached in ``/tmp/relay-dedupe/`` by size and seed, so a second run reuses them). Each
method then runs in a fresh Python process per size, which streams the CSV itself (reading is part
of the cost) and reports:

- pairwise precision, recall and F1 after transitive closure (every pair inside a predicted
  cluster counts as merged: what an automatic merge does), B-cubed F1, the largest cluster;
- candidate pairs per record (pairs the method compared; for exact email, the pairs sharing a key);
- seconds (wall, reading included) and peak memory (the child's ``ru_maxrss``, taken right after
  matching, before the truth is loaded to score it).

Methods: ``exact-email`` (the baseline, ``crm_sandbox.seed.linkage.exact_email_labels``: what
Relay's identity did before fuzzy matching) and ``relay`` (``connector.core.matching.match_people``
with the shipped rules; "matcher not available" until that module exists). Goals (issue 10):
F1 >= 0.97 and precision >= 0.995 at every size; 1,000,000 records in under 120 s and 3 GiB.
Nothing here asserts a timing: the figures are printed, with "met" or "not met".

    python bench/dedupe.py [--sizes 10000,100000,1000000] [--seed 7] [--methods exact-email,relay]
                           [--profile] [--timeout 1800]
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import json
import os
import pstats
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CACHE = Path("/tmp/relay-dedupe")
METHODS = ("exact-email", "relay")
GOAL_F1 = 0.97
GOAL_PRECISION = 0.995
GOAL_SECONDS_1M = 120.0
GOAL_MIB_1M = 3 * 1024.0
ROOT = Path(__file__).resolve().parent.parent


# --- the child: one method on one file -----------------------------------------------------------


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _run_exact_email(people: Path) -> tuple[list[int], int | None]:
    from crm_sandbox.seed.linkage import exact_email_labels

    with open(people, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        return exact_email_labels(reader, header), None


def _run_relay(people: Path) -> tuple[list[int], int | None]:
    from connector.core.matching import match_people  # ImportError: not available yet

    with open(people, newline="", encoding="utf-8") as handle:
        result = match_people(csv.DictReader(handle), progress=None)
    return list(result.labels), int(result.candidate_pairs)


def child(method: str, people: Path, truth_path: Path, profile: bool) -> dict[str, Any]:
    """Run ``method`` on ``people`` in this (fresh) process and score it against ``truth_path``.

    Args:
        method: ``exact-email`` or ``relay``.
        people: the people CSV.
        truth_path: its truth CSV (``id,person``, same row order).
        profile: run under cProfile and print the 25 most expensive calls by cumulative time.

    Returns:
        The figures as a JSON-ready dict; ``status`` is ``ok`` or ``unavailable`` (with ``reason``).
    """
    run = _run_relay if method == "relay" else _run_exact_email
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    try:
        if profiler is not None:
            profiler.enable()
        labels, candidate_pairs = run(people)
    except ImportError as exc:
        return {"status": "unavailable", "reason": f"matcher not available ({exc})"}
    finally:
        if profiler is not None:
            profiler.disable()
    seconds = time.perf_counter() - started
    peak = _peak_mib()
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        print(out.getvalue())
    from crm_sandbox.seed.linkage import score
    from crm_sandbox.seed.people import read_truth

    truth = read_truth(truth_path)
    if len(truth) != len(labels):
        raise SystemExit(f"{method}: {len(labels)} labels for {len(truth)} rows of {truth_path}")
    scores = score(labels, truth)
    if candidate_pairs is None:
        candidate_pairs = scores.predicted_pairs
    return {
        "status": "ok",
        "seconds": seconds,
        "peak_mib": peak,
        "candidate_pairs": candidate_pairs,
        **scores.as_dict(),
    }


# --- the parent -----------------------------------------------------------------------------------


def data_files(size: int, seed: int, cache: Path) -> tuple[Path, Path, float | None]:
    """The people and truth CSVs of a size and seed, generated (in a subprocess) unless cached.

    Returns:
        (people CSV, truth CSV, seconds the generation took or None when cached).
    """
    cache.mkdir(parents=True, exist_ok=True)
    people = cache / f"people-{size}-seed{seed}.csv"
    truth = cache / f"truth-{size}-seed{seed}.csv"
    if people.exists() and truth.exists():
        return people, truth, None
    part_people, part_truth = people.with_suffix(".part"), truth.with_suffix(".part")
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "crm_sandbox", "people", "--rows", str(size), "--seed", str(seed),
         "--out", str(part_people), "--truth", str(part_truth)],
        check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
    )
    part_people.replace(people)
    part_truth.replace(truth)
    return people, truth, time.perf_counter() - started


def run_child(method: str, people: Path, truth: Path, timeout: float, profile: bool = False) -> dict[str, Any]:
    """One method on one file in a fresh process; its figures, or why there are none."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", method,
               "--people", str(people), "--truth", str(truth)]
    if profile:
        command.append("--profile")
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    except subprocess.TimeoutExpired:
        return {"status": "failed", "reason": f"timed out after {timeout:.0f} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"status": "failed", "reason": f"exit {done.returncode}: {tail}"}
    result: dict[str, Any] = json.loads(lines[-1])
    if profile:
        result["profile"] = "\n".join(lines[:-1])
    return result


def _row(size: int, method: str, r: dict[str, Any]) -> str:
    head = f"{size:>10,}  {method:<12}"
    if r["status"] != "ok":
        return f"{head}  {r['reason']}"
    per_record = r["candidate_pairs"] / r["records"] if r["records"] else 0.0
    return (f"{head}  {r['pairwise_precision']:>7.4f} {r['pairwise_recall']:>7.4f} {r['pairwise_f1']:>7.4f}"
            f"  {r['bcubed_f1']:>7.4f} {r['largest_cluster']:>8,} {per_record:>10.2f}"
            f" {r['seconds']:>9.1f} {r['peak_mib']:>9.0f}")


def _goals(sizes: Sequence[int], results: dict[tuple[int, str], dict[str, Any]]) -> list[str]:
    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    lines = []
    for size in sizes:
        r = results.get((size, "relay"))
        if r is None or r["status"] != "ok":
            reason = "not run" if r is None else r["reason"]
            lines.append(f"  {size:>10,}: relay not measured ({reason})")
            continue
        parts = [
            f"F1 {r['pairwise_f1']:.4f} >= {GOAL_F1}: {verdict(r['pairwise_f1'] >= GOAL_F1)}",
            f"precision {r['pairwise_precision']:.4f} >= {GOAL_PRECISION}: "
            f"{verdict(r['pairwise_precision'] >= GOAL_PRECISION)}",
        ]
        if size == 1_000_000:
            parts.append(f"{r['seconds']:.0f} s < {GOAL_SECONDS_1M:.0f} s: {verdict(r['seconds'] < GOAL_SECONDS_1M)}")
            parts.append(f"{r['peak_mib']:.0f} MiB < 3 GiB: {verdict(r['peak_mib'] < GOAL_MIB_1M)}")
        lines.append(f"  {size:>10,}: " + "; ".join(parts))
    if 1_000_000 not in sizes:
        lines.append("  time and memory goals are for 1,000,000 records (not in --sizes)")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, with ``--child``, one method in this process)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated record counts")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, of {', '.join(METHODS)}")
    parser.add_argument("--profile", action="store_true",
                        help="also run relay under cProfile on the smallest size; print the top 25 by cumulative time")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per child process")
    parser.add_argument("--cache", type=Path, default=CACHE, help="where the generated CSVs are kept")
    parser.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--people", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--truth", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(child(args.child, args.people, args.truth, args.profile)), flush=True)
        return 0

    try:
        sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        parser.error(f"--sizes: expected comma-separated integers, got {args.sizes!r}")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not sizes or min(sizes) < 1:
        parser.error(f"--methods: unknown {unknown}" if unknown else f"--sizes: positive sizes needed, got {args.sizes!r}")

    results: dict[tuple[int, str], dict[str, Any]] = {}
    header = (f"{'records':>10}  {'method':<12}  {'P':>7} {'R':>7} {'F1':>7}  {'B3 F1':>7} {'largest':>8}"
              f" {'pairs/rec':>10} {'seconds':>9} {'peak MiB':>9}")
    files: dict[int, tuple[Path, Path]] = {}
    for size in sizes:
        people, truth, took = data_files(size, args.seed, args.cache)
        files[size] = (people, truth)
        made = f"generated in {took:.1f} s" if took is not None else "cached"
        print(f"{size:,} records, seed {args.seed}: {people} ({made})", flush=True)
        for method in methods:
            results[(size, method)] = run_child(method, people, truth, args.timeout)
            print("   " + _row(size, method, results[(size, method)]).strip(), flush=True)

    print()
    print("pairwise P/R/F1 after transitive closure; B3 = B-cubed; peak = child ru_maxrss after matching")
    print(header)
    for size in sizes:
        for method in methods:
            print(_row(size, method, results[(size, method)]))
    print()
    print(f"goals (relay): F1 >= {GOAL_F1} and precision >= {GOAL_PRECISION} at every size; "
          f"1,000,000 records under {GOAL_SECONDS_1M:.0f} s and 3 GiB")
    for line in _goals(sizes, results):
        print(line)

    if args.profile:
        size = sizes[0]
        people, truth = files[size]
        print(f"\nprofile of relay at {size:,} records (top 25 by cumulative time):")
        profiled = run_child("relay", people, truth, args.timeout, profile=True)
        print(profiled.get("profile") or profiled.get("reason", "no profile"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
