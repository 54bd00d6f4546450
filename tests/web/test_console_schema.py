"""Schemathesis over the admin API's OpenAPI document: generated calls of every endpoint and method, as an admin.

No answer may be a 500, and every answer must match the schema (status documented, body valid).
The store behind is a real sync of both sandboxes; a generated call may pause a connection or
start a sync, which is what an admin may do.
"""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings

from ._console import console_api


def test_no_generated_call_gets_a_500_or_breaks_the_schema(tmp_path: Path) -> None:
    with console_api(tmp_path) as running:
        schema = schemathesis.openapi.from_url(running.url + "/api/v1/openapi.json").include(path_regex="^/api/v1/")
        headers = {"Authorization": f"Bearer {running.tokens['admin']}"}
        failures: dict[str, str] = {}
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 20
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(base_url=running.url, headers=headers)

            try:
                check()
            except Exception as exc:  # every operation is tried; all failures are reported together
                failures[operation.label] = f"{type(exc).__name__}: {exc}"[:2000]
        assert failures == {}, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
