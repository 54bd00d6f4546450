"""The sink's record of every message it took: emails, Slack posts and text messages."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Channel = Literal["email", "slack", "sms"]


@dataclass(frozen=True)
class SinkMessage:
    """One message the sink took.

    Attributes:
        id: The sink's id for it (``SM...`` for a text message, as the SMS API answered it).
        channel: ``email``, ``slack`` or ``sms``.
        at: When it arrived (seconds since the epoch).
        sender: The envelope sender (email), the ``From`` number (SMS), empty for Slack.
        to: The recipients (email envelope), the ``To`` number (SMS), the webhook path (Slack).
        subject: The email's subject (None for Slack and SMS).
        text: The email's plain-text body, the Slack ``text``, the SMS ``Body``.
        headers: The email's headers (``Message-ID``, ``X-Relay-Notification``, ...); empty otherwise.
    """

    id: str
    channel: Channel
    at: float
    sender: str
    to: tuple[str, ...]
    subject: str | None
    text: str
    headers: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["to"] = list(self.to)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SinkMessage:
        return cls(id=str(data["id"]), channel=data["channel"], at=float(data["at"]), sender=str(data["sender"]),
                   to=tuple(data["to"]), subject=data.get("subject"), text=str(data["text"]),
                   headers=dict(data.get("headers") or {}))


class MessageLedger:
    """Thread-safe list of the messages the sink took, in arrival order."""

    def __init__(self, max_messages: int = 100_000) -> None:
        self._max = max_messages
        self._messages: list[SinkMessage] = []
        self._changed = threading.Condition()

    def add(self, message: SinkMessage) -> None:
        with self._changed:
            self._messages.append(message)
            if len(self._messages) > self._max:
                del self._messages[: len(self._messages) - self._max]
            self._changed.notify_all()

    def all(self, channel: Channel | None = None) -> list[SinkMessage]:
        """Every message (of ``channel``), oldest first."""
        with self._changed:
            return [m for m in self._messages if channel is None or m.channel == channel]

    def clear(self) -> int:
        """Forget every message; returns how many there were."""
        with self._changed:
            count = len(self._messages)
            self._messages.clear()
            return count

    def wait_for(self, predicate: Callable[[list[SinkMessage]], bool], timeout: float = 5.0) -> list[SinkMessage]:
        """Wait until ``predicate(messages)`` holds (or ``timeout`` seconds passed); returns the messages."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(list(self._messages)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            return list(self._messages)

    def as_json(self, channel: Channel | None = None) -> dict[str, Any]:
        messages = self.all(channel)
        counts: dict[str, int] = {}
        for message in messages:
            counts[message.channel] = counts.get(message.channel, 0) + 1
        return {"server": "notify", "counts": counts, "messages": [m.as_json() for m in messages]}

    def load_json(self, data: dict[str, Any]) -> None:
        with self._changed:
            self._messages = [SinkMessage.from_json(item) for item in data.get("messages") or []]
