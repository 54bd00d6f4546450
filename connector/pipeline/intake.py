"""Events a CRM pushed, stored in the webhook inbox before the sender is answered.

The web layer checks and reads a request with its CRM unit (``read_webhook``) and hands the
events here: one transaction stores them all, each logical event once however often the CRM
delivers it, and only then does the sender get its 200. Processing the stored events is a
job's work; nothing is decided here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus

from sqlalchemy import Engine, text
from sqlalchemy.exc import DataError, InterfaceError, OperationalError

from connector.crms.intake import WebhookEvent, WebhookRefused
from connector.store.db import session_factory
from connector.store.errors import InvalidStoreValue, StoreError
from connector.store.health import shown_url, translate
from connector.store.repositories import EventRecord, Inbox


@dataclass(frozen=True)
class Stored:
    """What one delivery added to the inbox.

    Attributes:
        received: Events in the request.
        new: Events stored for the first time.
        repeated: Events the inbox already held (a redelivery or a duplicate within the request).
    """

    received: int
    new: int

    @property
    def repeated(self) -> int:
        return self.received - self.new


class InboxUnavailable(Exception):
    """The store cannot take events now (down, unreachable, locked): the sender should deliver again."""


class EventInbox:
    """The webhook inbox of one store, for the web layer."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = session_factory(engine)

    def store(self, kind: str, connection: str, events: Sequence[WebhookEvent], *, now: datetime) -> Stored:
        """Store ``events`` pushed by connection ``connection`` (a ``kind`` CRM) in one transaction.

        The payload keeps the connection, the object, the record id and the event as sent, so
        the job that processes it needs nothing else.

        Raises:
            WebhookRefused: 400 ``UNSTORABLE_EVENT`` when the store refuses an event's values (its
                key or payload), naming it: sending it again would not help.
            InboxUnavailable: When the store cannot take them now (the sender should deliver
                again). Anything else is a defect and is raised as it is.
        """
        items = [(event.key, {"connection": connection, "object": event.object, "crm_id": event.crm_id,
                              "kind": event.kind, "event": dict(event.payload),
                              **({"changes": dict(event.changes)} if event.changes is not None else {}),
                              **({"changed_by": event.changed_by} if event.changed_by else {})},
                  EventRecord(connection, event.object, event.crm_id or event.about)) for event in events]
        try:
            with self._sessions.begin() as session:
                new = Inbox(session).store_many(kind, items, received_at=now) if items else 0
        except InvalidStoreValue as exc:
            raise WebhookRefused(HTTPStatus.BAD_REQUEST, "UNSTORABLE_EVENT", str(exc)) from exc
        except DataError as exc:  # e.g. PostgreSQL refusing a NUL character in JSON text
            raise WebhookRefused(HTTPStatus.BAD_REQUEST, "UNSTORABLE_EVENT",
                                 f"the store refused an event's values: {str(exc.orig).splitlines()[0]}") from exc
        except StoreError as exc:
            raise InboxUnavailable(str(exc)) from exc
        except (OperationalError, InterfaceError) as exc:  # the database is down, unreachable or locked
            problem = translate(self.engine, exc)
            raise InboxUnavailable(str(problem) if problem is not None else str(exc).splitlines()[0]) from exc
        return Stored(received=len(events), new=new)

    def problem(self) -> str | None:
        """Why the store cannot take events now (one line naming it), or None when it can."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:
            found = translate(self.engine, exc)
            return str(found) if found is not None else f"{shown_url(self.engine)}: {type(exc).__name__}: {exc}"
        return None
