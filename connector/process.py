"""Settings of a Relay process (the CLI, a worker), applied once at its start.

Python's cyclic garbage collector runs a young-generation pass every 700 allocations net
and walks the whole heap when enough objects survived. A sync allocates millions of
short-lived objects (records, canonical values, decisions) that reference counting frees
on its own; at the default thresholds the collector's passes were about a quarter of the
decision core's time in pages of 2,000 (``bench/core.py``: 9,300 -> 11,300 leads/s with the
thresholds below). Collections still run, only less often; cycles are still freed.
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (50_000, 50, 100)
"""Young-generation allocations before a pass, then passes before each older generation's."""


def tune_gc() -> None:
    """Collect less often (see the module docstring); what was allocated so far (imports,
    configuration) is moved out of the collector's sight with ``gc.freeze``."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
