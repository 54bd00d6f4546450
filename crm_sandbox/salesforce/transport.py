"""Send simple-salesforce's ``https://`` requests to a sandbox on loopback.

simple-salesforce always builds ``https://{instance}/...`` URLs (login included).
Mounting :class:`LoopbackAdapter` on the ``requests.Session`` given to it sends
every such request to the sandbox's plain-HTTP address instead. This module
depends on nothing but ``requests``: it is the one piece Relay's adapter may use.
"""

from __future__ import annotations

from os import PathLike
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


def sandbox_session(base_url: str, ca_bundle: str | PathLike[str] | None = None) -> requests.Session:
    """A ``requests.Session`` whose ``https://`` requests all go to the sandbox at ``base_url``.

    Args:
        base_url: the sandbox's address, ``http://127.0.0.1:PORT`` or, for a sandbox serving TLS,
            ``https://127.0.0.1:PORT``.
        ca_bundle: the CA certificate the sandbox's TLS certificate is checked against (the
            sandbox's ``ca_bundle``); needed for an ``https://`` base URL, since the session ignores
            ``REQUESTS_CA_BUNDLE`` (it does not read the environment, so no proxy is used either).

    Example:
        >>> sf = Salesforce(instance_url="https://sandbox.example", session_id=token,
        ...                 session=sandbox_session(server.url))  # doctest: +SKIP
    """
    session = requests.Session()
    session.trust_env = False
    if ca_bundle is not None:
        session.verify = str(ca_bundle)
    session.mount("https://", LoopbackAdapter(base_url))
    return session
