"""Relay syncs both sandboxes over HTTPS, trusting their throwaway CA as it would a real CRM's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from connector.config.loader import load_config
from connector.pipeline.sync import run_sync
from connector.store.migrate import open_store
from crm_sandbox import SandboxGroup
from crm_sandbox.seed import generate


def test_a_sync_over_https_routes_and_writes_as_over_http(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with SandboxGroup(seed_data=generate(seed=9, leads=30), tls=True, tls_dir=tmp_path / "tls") as group:
        env = group.env()
        assert env["SALESFORCE_INSTANCE_URL"].startswith("https://")
        assert env["HUBSPOT_BASE_URL"].startswith("https://")
        for name, value in env.items():  # the CA bundle too: REQUESTS_CA_BUNDLE and SSL_CERT_FILE
            monkeypatch.setenv(name, value)
        config = load_config(env=dict(os.environ))
        engine = open_store(f"sqlite:///{tmp_path / 'relay.db'}")
        try:
            for connection in ("salesforce", "hubspot"):
                summary = run_sync(config, connection, engine)
                assert summary.write_failures == []
                assert sum(summary.routed.values()) > 0 and summary.records_updated > 0, summary.counts()
        finally:
            engine.dispose()


def test_without_the_ca_the_sandbox_certificate_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from connector.adapters.errors import CrmError

    with SandboxGroup(["hubspot"], seed_data=generate(seed=9, leads=5), tls=True, tls_dir=tmp_path / "tls") as group:
        env = {k: v for k, v in group.env().items() if k not in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")}
        for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE"):
            monkeypatch.delenv(name, raising=False)
        config = load_config(env=dict(os.environ, **env))
        engine = open_store(f"sqlite:///{tmp_path / 'relay.db'}")
        try:
            with pytest.raises(CrmError, match=r"(?i)certificate|ssl"):
                run_sync(config, "hubspot", engine)
        finally:
            engine.dispose()
