"""Run a sandbox ASGI app on a real loopback port, in a background thread.

Tests, ``relay demo`` and the benchmarks start the sandbox CRMs in-process with
:class:`SandboxServer`; ``relay sandbox`` runs them in the foreground.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn

GRACEFUL_SHUTDOWN_SECONDS = 5
"""How long :meth:`SandboxServer.stop` lets running requests finish before cancelling them."""


class SandboxServerError(RuntimeError):
    """The sandbox server could not start."""


class SandboxServer:
    """A uvicorn server for one sandbox app, on ``host:port`` (port 0 picks a free one).

    Example:
        >>> server = SandboxServer(app).start()   # doctest: +SKIP
        >>> server.url                             # doctest: +SKIP
        'http://127.0.0.1:54321'
        >>> server.stop()                          # doctest: +SKIP
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, name: str = "sandbox") -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self.name = name
        self.port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8701`` (no trailing slash)."""
        if self.port is None:
            raise SandboxServerError(f"{self.name} sandbox is not running")
        return f"http://{self.host}:{self.port}"

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
        )
        server = uvicorn.Server(config)
        self._server = server
        closing = self._closing()
        if closing is not None:
            closing.clear()
        self._thread = threading.Thread(target=server.run, name=f"sandbox-{self.name}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive():
                raise SandboxServerError(
                    f"{self.name} sandbox failed to start on {self.host}:{self.requested_port} "
                    "(is the port already in use?)"
                )
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
