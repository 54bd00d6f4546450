"""``python -m crm_sandbox``: run the sandbox CRMs in the foreground (see :mod:`crm_sandbox.cli`)."""

from __future__ import annotations

import sys

from crm_sandbox.cli import main

if __name__ == "__main__":
    sys.exit(main())
