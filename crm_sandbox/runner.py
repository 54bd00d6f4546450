"""Run a sandbox ASGI app on a real loopback port, in a background thread.

Tests, ``relay demo`` and the benchmarks start the sandbox CRMs in-process with
:class:`SandboxServer`; ``relay sandbox`` and ``python -m crm_sandbox`` run them in the foreground.
Given a :class:`~crm_sandbox.tls.SandboxTLS`, the server speaks HTTPS instead of plain HTTP.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import uvicorn

if TYPE_CHECKING:
    from crm_sandbox.tls import SandboxTLS

GRACEFUL_SHUTDOWN_SECONDS = 5
"""How long :meth:`SandboxServer.stop` lets running requests finish before cancelling them."""


class SandboxServerError(RuntimeError):
    """The sandbox server could not start."""


class SandboxServer:
    """A uvicorn server for one sandbox app, on ``host:port`` (port 0 picks a free one).

    Args:
        app: the ASGI app.
        host: the interface to bind.
        port: the port to bind; 0 lets the OS pick a free one (read it from :attr:`port` once started).
        name: the sandbox's name, for thread names and messages.
        tls: serve HTTPS with this certificate (None: plain HTTP).

    Example:
        >>> server = SandboxServer(app).start()   # doctest: +SKIP
        >>> server.url                             # doctest: +SKIP
        'http://127.0.0.1:54321'
        >>> server.stop()                          # doctest: +SKIP
    """

    def __init__(
        self, app: Any, host: str = "127.0.0.1", port: int = 0, name: str = "sandbox", tls: SandboxTLS | None = None
    ) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self.name = name
        self.tls = tls
        self.port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def scheme(self) -> str:
        """``https`` when serving TLS, else ``http``."""
        return "https" if self.tls is not None else "http"

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8701`` or ``https://127.0.0.1:8701`` (no trailing slash)."""
        if self.port is None:
            raise SandboxServerError(f"{self.name} sandbox is not running")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def start(self, timeout: float = 15.0) -> SandboxServer:
        """Start serving and wait until the socket is bound."""
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.requested_port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=30,
            # A backstop: requests still running this long after stop() are cancelled.
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            ssl_certfile=str(self.tls.cert_file) if self.tls is not None else None,
            ssl_keyfile=str(self.tls.key_file) if self.tls is not None else None,
        )
        server = uvicorn.Server(config)
        self._server = server
        closing = self._closing()
        if closing is not None:
            closing.clear()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                server.run()
            except BaseException as exc:  # uvicorn ends with SystemExit when it cannot bind
                failure.append(exc)

        self._thread = threading.Thread(target=run, name=f"sandbox-{self.name}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive():
                cause = failure[0] if failure else None
                why = (
                    "is the port already in use?"
                    if cause is None or isinstance(cause, SystemExit)
                    else f"{type(cause).__name__}: {cause}"
                )
                raise SandboxServerError(
                    f"{self.name} sandbox failed to start on {self.host}:{self.requested_port} ({why})"
                ) from cause
            if time.monotonic() > deadline:
                raise SandboxServerError(f"{self.name} sandbox did not start within {timeout} s")
            time.sleep(0.01)
        sockets = [sock for srv in server.servers for sock in srv.sockets]
        self.port = int(sockets[0].getsockname()[1])
        return self

    def _closing(self) -> threading.Event | None:
        """The app's ``closing`` event (the sandbox middleware ends held answers when it is set)."""
        closing = getattr(self.app, "closing", None)
        return closing if isinstance(closing, threading.Event) else None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and wait for the thread to end; held answers and fault delays end at once."""
        closing = self._closing()
        if closing is not None:
            closing.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._server = None
        self._thread = None
        self.port = None

    def __enter__(self) -> SandboxServer:
        return self.start() if self.port is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
