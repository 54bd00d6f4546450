"""Fixtures for the decision core tests."""

from __future__ import annotations

import pytest

from connector.core.rules import Rules

from .helpers import shipped_rules


@pytest.fixture(scope="session")
def rules() -> Rules:
    """The shipped default rules from config/rules/."""
    return shipped_rules()
