"""A requests session that sends simple-salesforce's ``https://`` calls to a local ``http://`` server.

simple-salesforce always builds ``https://{instance}/...`` URLs. The sandbox
Salesforce serves plain HTTP on loopback, so this transport rewrites scheme and
host of every ``https://`` request to the sandbox's base URL. The sandbox ships
the same helper (``connector.sandbox.salesforce.transport.sandbox_session``),
which is preferred when present; this one is the fallback.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter


class LoopbackAdapter(HTTPAdapter):
    """Rewrites ``https://<anything>/path`` to ``<base_url>/path``."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.netloc:
            raise ValueError(f"loopback base URL must be http://host:port, got {base_url!r}")
        self._netloc = parts.netloc
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        """Send ``request`` to the local server instead."""
        parts = urlsplit(request.url or "")
        request.url = urlunsplit(("http", self._netloc, parts.path, parts.query, parts.fragment))
        return super().send(request, *args, **kwargs)


def loopback_session(base_url: str) -> requests.Session:
    """A session whose ``https://`` calls go to ``base_url`` (``http://127.0.0.1:PORT``)."""
    try:  # the sandbox's own transport, when it is installed
        from connector.sandbox.salesforce.transport import sandbox_session
    except ImportError:
        session = requests.Session()
        session.trust_env = False
        session.mount("https://", LoopbackAdapter(base_url))
        return session
    return sandbox_session(base_url)
