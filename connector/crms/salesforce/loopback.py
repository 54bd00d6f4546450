"""A requests session that sends simple-salesforce's ``https://`` calls to a local ``http://`` server.

simple-salesforce always builds ``https://{instance}/...`` URLs. The sandbox
Salesforce serves plain HTTP on loopback, so this transport rewrites scheme and
host of every ``https://`` request to the sandbox's base URL. The sandbox ships
the same helper (``crm_sandbox.salesforce.transport.sandbox_session``),
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


def apply_default_timeout(session: requests.Session, timeout: float | tuple[float, float]) -> None:
    """Give every request ``session`` sends without a timeout this one (requests' default is to wait forever).

    simple-salesforce's Bulk 2.0 client, for one, passes no timeout: against a server that
    accepts and never answers, such a call would hang for good.

    Args:
        session: The session (its transport adapters mounted so far are covered).
        timeout: Seconds, or a ``(connect, read)`` pair.
    """
    for transport in session.adapters.values():
        send = transport.send

        def send_with_timeout(request: requests.PreparedRequest, *args: Any,
                              _send: Any = send, **kwargs: Any) -> requests.Response:
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = timeout
            response: requests.Response = _send(request, *args, **kwargs)
            return response

        transport.send = send_with_timeout  # type: ignore[method-assign]


def loopback_session(base_url: str) -> requests.Session:
    """A session whose ``https://`` calls go to ``base_url`` (``http://127.0.0.1:PORT``)."""
    try:  # the sandbox's own transport, when it is installed
        from crm_sandbox.salesforce.transport import sandbox_session
    except ImportError:
        session = requests.Session()
        session.trust_env = False
        session.mount("https://", LoopbackAdapter(base_url))
        return session
    return sandbox_session(base_url)
