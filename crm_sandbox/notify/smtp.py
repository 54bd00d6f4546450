"""The sink's SMTP listener (aiosmtpd), on its own event loop in a background thread.

It takes every message for any recipient, except addresses under the reserved ``.invalid``
top-level domain (RFC 2606), which it refuses for good (``550``): a permanent failure to test
against. Faults come from the sink's fault injector (path ``/smtp/DATA``): ``server_error``
answers ``451`` and ``rate_limit`` ``452`` (both temporary), ``drop`` closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import socket
import threading
import time
import uuid
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from crm_sandbox.common import FaultInjector, Ledger, LedgerEntry
from crm_sandbox.notify.messages import MessageLedger, SinkMessage

DATA_PATH = "/smtp/DATA"


class _Handler:
    """aiosmtpd handler: record each message in the sink's ledger, or refuse it as the faults say."""

    def __init__(self, messages: MessageLedger, ledger: Ledger, faults: FaultInjector) -> None:
        self.messages = messages
        self.ledger = ledger
        self.faults = faults

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if address.lower().rstrip(">").endswith(".invalid"):
            return f"550 5.1.1 <{address}>: mailbox unavailable (the .invalid domain never exists)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        started = time.perf_counter()
        decision = self.faults.decide("SMTP", DATA_PATH)
        fault = decision.kind if decision is not None else None
        if fault == "server_error":
            reply = "451 4.3.0 The sink refused the message (injected fault); try again later"
        elif fault == "rate_limit":
            reply = "452 4.5.3 Too many messages for the sink (injected fault); try again later"
        elif fault == "drop" and server.transport is not None:
            server.transport.close()
            reply = "421 4.4.2 Connection dropped (injected fault)"
        else:
            fault = None
            reply = "250 2.0.0 OK: queued as " + self._record(envelope)
        self.ledger.add(LedgerEntry(
            at=time.time(), method="SMTP", path=DATA_PATH, status=int(reply[:3]), records_read=0,
            records_written=0 if fault else 1, duration_ms=round((time.perf_counter() - started) * 1000, 3),
            kind="email", fault=fault, detail=", ".join(envelope.rcpt_tos),
        ))
        return reply

    def _record(self, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        content = raw if isinstance(raw, bytes) else str(raw).encode()
        parsed: Any = email.message_from_bytes(content, policy=email.policy.default)
        body = parsed.get_body(preferencelist=("plain",))
        text = body.get_content().replace("\r\n", "\n") if body is not None else ""
        message_id = uuid.uuid4().hex[:16]
        self.messages.add(SinkMessage(
            id=message_id, channel="email", at=time.time(), sender=str(envelope.mail_from or ""),
            to=tuple(envelope.rcpt_tos), subject=str(parsed.get("Subject", "")), text=text,
            headers={str(k): str(v) for k, v in parsed.items()},
        ))
        return message_id


class SmtpListener:
    """An SMTP server on ``host:port`` (0: the OS picks) in a thread of its own."""

    def __init__(self, messages: MessageLedger, ledger: Ledger, faults: FaultInjector) -> None:
        self.handler = _Handler(messages, ledger, faults)
        self.host: str | None = None
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, host: str = "127.0.0.1", port: int = 0) -> SmtpListener:
        """Bind and serve; returns once the socket listens.

        Raises:
            OSError: the port is taken (the message names host and port).
        """
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(64)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise OSError(f"the sink's SMTP listener could not bind {host}:{port}: {exc}") from exc
        self.host, self.port = host, int(sock.getsockname()[1])
        loop = asyncio.new_event_loop()
        self._loop = loop

        def factory() -> SMTP:
            return SMTP(self.handler, hostname="notify-sink", loop=loop)

        self._server = loop.run_until_complete(loop.create_server(factory, sock=sock))
        self._thread = threading.Thread(target=loop.run_forever, name="sandbox-notify-smtp", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and end the thread."""
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return

        async def shutdown() -> None:
            server.close()
            sessions = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in sessions:  # open SMTP sessions end with the server
                task.cancel()
            await asyncio.gather(*sessions, return_exceptions=True)

        with contextlib.suppress(Exception):  # stopping goes on whatever the sessions say
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        loop.close()
        self._loop, self._server, self._thread, self.port = None, None, None, None
