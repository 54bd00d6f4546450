"""Sandbox CRMs: local servers speaking the Salesforce and HubSpot APIs, for any client to test against.

Seeded with deterministic, realistically messy data, with fault injection and a ledger of every call.
The package imports nothing of Relay; see ``crm_sandbox/README.md``. Run them with
``python -m crm_sandbox``; in-process, use :class:`crm_sandbox.registry.SandboxGroup` or the classes
``crm_sandbox.salesforce.SalesforceSandbox`` and ``crm_sandbox.hubspot.HubSpotSandbox``.

``crm_sandbox.SANDBOXES``, ``available()`` and ``SandboxGroup`` come from :mod:`crm_sandbox.registry`,
imported on first use (so ``import crm_sandbox.seed`` stays light).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crm_sandbox.registry import SANDBOXES, SandboxGroup, available

__all__ = ["SANDBOXES", "SandboxGroup", "available"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from crm_sandbox import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'crm_sandbox' has no attribute {name!r}")
