"""The CRMs Relay speaks to, each one registered unit.

A CRM unit is a package ``connector/crms/<kind>/`` whose ``__init__`` defines ``UNIT``, a
:class:`CrmUnit`: its connection settings model, how to open its adapter, its error
dialect, how its values travel, which of its objects hold leads or contacts, its API
limits and its sandbox. The config union, the adapter factory, the mapping engine and
the CLI read this registry; nothing outside a unit's package names a CRM. A CRM shipped
elsewhere registers the same way through the ``relay.crms`` entry-point group::

    [project.entry-points."relay.crms"]
    pipedrive = "relay_pipedrive:UNIT"

Adding a CRM is one package and one mapping file; nothing else is edited.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Literal

from connector.adapters.errors import ConfigurationError

if TYPE_CHECKING:
    from connector.adapters.base import CrmAdapter
    from connector.adapters.budget import Governor
    from connector.adapters.calls import ApiCallCounter
    from connector.adapters.retry import RetryPolicy
    from connector.config.connection import ConnectionSettings
    from connector.crms.intake import WebhookEvent, WebhookRequest

PersonKind = Literal["lead", "contact"]
ENTRY_POINT_GROUP = "relay.crms"


@dataclass(frozen=True)
class ValueStyle:
    """How field values travel to the CRM.

    Attributes:
        text_only: Every value is sent as text (HubSpot properties: ``"42"``, ``"true"``, and
            ``""`` to clear); otherwise values keep their JSON type and ``null`` clears.
    """

    text_only: bool = False

    @property
    def empty(self) -> Any:
        """The value that clears a field."""
        return "" if self.text_only else None


@dataclass(frozen=True)
class CrmLimits:
    """What the CRM's API takes per call (the settings models check ``page_size``/``write_batch_size``).

    Attributes:
        max_write_batch: Records per write call.
        max_page_size: Records per read page.
        min_page_size: The smallest page the API accepts.
    """

    max_write_batch: int
    max_page_size: int
    min_page_size: int = 1


@dataclass(frozen=True)
class AdapterOptions:
    """What the factory hands a unit's ``open_adapter`` besides the settings (all resolved)."""

    retry: RetryPolicy
    calls: ApiCallCounter | None
    timeout: float | tuple[float, float]
    """``(connect, read)`` seconds; one number is the read timeout."""
    read_lag_seconds: float
    owners_cache_seconds: float = 0.0
    """How long ``owners()`` may answer from the process-wide cache (0: always ask the CRM)."""
    governor: Governor | None = None
    """The connection's API budget (``connector/adapters/budget.py``): every counted call takes a token
    first (None: calls are not held)."""
    subscription_types: tuple[str, ...] = ()
    """The email subscription types, by name, whose opt-out makes a person unsubscribed (consent.yaml
    ``subscription_types.<kind>``; for a unit that ``reads_subscription_types``)."""


@dataclass(frozen=True)
class CrmUnit:
    """Everything Relay knows about one CRM, in one place.

    Attributes:
        kind: The ``kind`` of its connections in ``relay.yaml`` and the ``crm`` of its mapping files.
        label: How people write its name (``HubSpot``).
        settings: Its connection settings model (a ``ConnectionSettings`` with ``kind: Literal[kind]``).
        open_adapter: ``(connection name, settings, options) -> CrmAdapter``; imports its SDK lazily.
        values: How its field values travel.
        field_word: What the CRM calls a field, singular and plural (``property``, ``properties``).
        creates_fields: Relay may create missing custom fields through the API (``create_properties``).
        person_kinds: Object name -> whether its people are leads or contacts, when the mapping
            file does not say (``person_kind``).
        limits: Its API limits.
        sandbox: The name of its sandbox in the ``crm_sandbox`` registry (``relay demo`` starts it), if any.
        read_webhook: ``(request, settings, now in ms) -> events``: checks and reads what the CRM
            pushes (``POST /webhooks/<kind>``), or raises ``WebhookRefused``; None when it pushes nothing.
        webhook_reply: ``(status, code or None, message) -> (media type, body)``: the answer the
            CRM expects (None: JSON, ``{"error": {code, message}}`` for a refusal).
        reads_subscription_types: Its adapter reads opt-outs of the email subscription types consent.yaml
            names for it (``subscription_types.<kind>``, handed over as ``AdapterOptions.subscription_types``)
            into the canonical ``subscription_status``.
    """

    kind: str
    label: str
    settings: type[ConnectionSettings]
    open_adapter: Callable[[str, Any, AdapterOptions], CrmAdapter]
    values: ValueStyle = field(default_factory=ValueStyle)
    field_word: tuple[str, str] = ("field", "fields")
    creates_fields: bool = False
    person_kinds: Mapping[str, PersonKind] = field(default_factory=dict)
    limits: CrmLimits = field(default_factory=lambda: CrmLimits(max_write_batch=100, max_page_size=100))
    sandbox: str | None = None
    read_webhook: Callable[[WebhookRequest, Any, int], list[WebhookEvent]] | None = None
    webhook_reply: Callable[[int, str | None, str | None], tuple[str, bytes]] | None = None
    reads_subscription_types: bool = False

    def field_noun(self, count: int) -> str:
        """``field``/``fields`` in the CRM's own word."""
        return self.field_word[0] if count == 1 else self.field_word[1]

    def missing_fields(self, object: str, missing: Sequence[str], *, connection: str = "",
                       source: str = "") -> ConfigurationError:
        """The error for fields a mapping names but the CRM lacks: every name and the object, ``UNKNOWN_FIELDS``.

        Example:
            >>> crm_unit("hubspot").missing_fields("contacts", ["emial"], source="mappings/hubspot.yaml").message
            'HubSpot contacts has no property emial (named in mappings/hubspot.yaml): check the spelling'
        """
        where = f" (named in {source})" if source else ""
        return ConfigurationError(
            f"{self.label} {object} has no {self.field_noun(len(missing))} {', '.join(missing)}{where}: "
            "check the spelling", crm=self.kind, code="UNKNOWN_FIELDS", fields=list(missing), connection=connection)


def secret_text(value: Any) -> str:
    """The text of a setting that may be a pydantic ``SecretStr`` (credentials in a unit's settings)."""
    getter = getattr(value, "get_secret_value", None)
    return str(getter() if getter is not None else value)


class UnknownCrm(KeyError):
    """A ``kind`` or ``crm`` no registered unit answers to."""

    def __init__(self, kind: str, known: list[str]) -> None:
        super().__init__(kind)
        self.kind = kind
        self.known = known

    def __str__(self) -> str:
        return f"no CRM unit {self.kind!r} (known: {', '.join(self.known)})"


_UNITS: dict[str, CrmUnit] = {}
_LOADED = False
_LOCK = threading.RLock()


def register(unit: CrmUnit) -> CrmUnit:
    """Add ``unit`` to the registry (a unit shipped in another package calls this, or uses the entry point)."""
    with _LOCK:
        _UNITS[unit.kind] = unit
    return unit


def load_units() -> dict[str, CrmUnit]:
    """Every registered unit by kind: the packages under ``connector/crms/``, then entry points."""
    global _LOADED
    with _LOCK:
        if not _LOADED:
            for module in pkgutil.iter_modules(__path__):
                if module.ispkg and not module.name.startswith("_"):
                    unit = importlib.import_module(f"{__name__}.{module.name}").UNIT
                    _UNITS.setdefault(unit.kind, unit)
            for entry in entry_points(group=ENTRY_POINT_GROUP):
                unit = entry.load()
                if not isinstance(unit, CrmUnit):
                    raise TypeError(f"entry point {entry.name!r} ({entry.value}) is not a CrmUnit")
                _UNITS.setdefault(unit.kind, unit)
            _LOADED = True
        return dict(_UNITS)


def crm_unit(kind: str) -> CrmUnit:
    """The unit of ``kind``.

    Raises:
        UnknownCrm: naming the known kinds.
    """
    units = load_units()
    try:
        return units[kind]
    except KeyError:
        raise UnknownCrm(kind, sorted(units)) from None


def crm_kinds() -> list[str]:
    """The registered kinds, sorted."""
    return sorted(load_units())
