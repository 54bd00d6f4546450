"""``${VAR:-default}`` references in relay.yaml."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.config.envsubst import MissingVariableError, substitute, substitute_tree


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${SALESFORCE_INSTANCE_URL:-http://127.0.0.1:8701}", {}, "http://127.0.0.1:8701"),
        ("${SALESFORCE_INSTANCE_URL:-http://127.0.0.1:8701}", {"SALESFORCE_INSTANCE_URL": "https://acme.my.salesforce.com"},
         "https://acme.my.salesforce.com"),
        ("${TOKEN:-fallback}", {"TOKEN": ""}, "fallback"),
        ("${TOKEN-fallback}", {"TOKEN": ""}, ""),
        ("${TOKEN-fallback}", {}, "fallback"),
        ("${TOKEN:-}", {}, ""),
        ("${TOKEN}", {"TOKEN": "abc"}, "abc"),
        ("https://${HOST:-localhost}:${PORT:-8702}/api", {"PORT": "9000"}, "https://localhost:9000/api"),
        ("price is $$5 and $HOME stays", {"HOME": "/root"}, "price is $5 and $HOME stays"),
        ("no references", {}, "no references"),
    ],
)
def test_substitution(text: str, env: dict[str, str], expected: str) -> None:
    assert substitute(text, env) == expected


def test_unset_variable_without_default_is_an_error() -> None:
    with pytest.raises(MissingVariableError, match="environment variable HUBSPOT_ACCESS_TOKEN is not set"):
        substitute("${HUBSPOT_ACCESS_TOKEN}", {})


@pytest.mark.parametrize("text", ["${}", "${1ABC}", "${NAME", "${NAME:+x}"])
def test_malformed_reference_is_an_error(text: str) -> None:
    with pytest.raises(MissingVariableError, match="malformed environment reference"):
        substitute(text, {})


def test_tree_substitution_reports_paths_and_keeps_other_values() -> None:
    data = {"a": ["${X:-1}", {"b": "${MISSING}"}], "n": 3, "flag": True}
    result, failures = substitute_tree(data, {})
    assert result == {"a": ["1", {"b": "${MISSING}"}], "n": 3, "flag": True}
    assert [(path, value) for path, value, _ in failures] == [(("a", 1, "b"), "${MISSING}")]


@settings(max_examples=100, deadline=None)
@given(value=st.text(alphabet=st.characters(exclude_characters="$}", codec="utf-8"), max_size=30),
       default=st.text(alphabet=st.characters(exclude_characters="$}", codec="utf-8"), max_size=30))
def test_set_variable_wins_over_default(value: str, default: str) -> None:
    expected = value if value else default
    assert substitute("${VAR:-" + default + "}", {"VAR": value}) == expected
    assert substitute("${VAR:-" + default + "}", {}) == default
