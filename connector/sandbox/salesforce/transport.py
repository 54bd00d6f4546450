"""Send simple-salesforce's ``https://`` requests to a sandbox on loopback.

simple-salesforce always builds ``https://{instance}/...`` URLs (login included).
Mounting :class:`LoopbackAdapter` on the ``requests.Session`` given to it sends
every such request to the sandbox's plain-HTTP address instead. This module
depends on nothing but ``requests``: it is the one piece Relay's adapter may use.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter


class LoopbackAdapter(HTTPAdapter):
    """A transport adapter that rewrites ``https://<any host>/path`` to ``{base_url}/path``.

    Args:
        base_url: the sandbox's address, e.g. ``http://127.0.0.1:54321``.
    """

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must look like http://127.0.0.1:PORT, got {base_url!r}")
        self.scheme = parts.scheme
        self.netloc = parts.netloc
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        """Rewrite the request's scheme and host, then send it."""
        parts = urlsplit(request.url or "")
        request.url = urlunsplit((self.scheme, self.netloc, parts.path, parts.query, parts.fragment))
        kwargs["verify"] = False if self.scheme == "http" else kwargs.get("verify", True)
        return super().send(request, *args, **kwargs)


def sandbox_session(base_url: str) -> requests.Session:
    """A ``requests.Session`` whose ``https://`` requests all go to the sandbox at ``base_url``.

    Example:
        >>> sf = Salesforce(instance_url="https://sandbox.example", session_id=token,
        ...                 session=sandbox_session(server.url))  # doctest: +SKIP
    """
    session = requests.Session()
    session.trust_env = False
    session.mount("https://", LoopbackAdapter(base_url))
    return session
