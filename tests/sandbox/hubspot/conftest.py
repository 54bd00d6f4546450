"""Fixtures: a HubSpot sandbox on a loopback port and an SDK client pointed at it."""

from hubspot_portal import hs, sandbox

__all__ = ["hs", "sandbox"]
