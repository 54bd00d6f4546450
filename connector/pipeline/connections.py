"""A configured connection, resolved once per run, and the adapter it names."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from connector.adapters.base import CrmAdapter
from connector.adapters.budget import Priority
from connector.adapters.retry import Deadline, RetryPolicy
from connector.config.connection import ConnectionSettings
from connector.config.loader import RelayConfig
from connector.config.mappings import MappingFile, ObjectMapping
from connector.crms import CrmUnit, crm_unit
from connector.crms.factory import build_adapter
from connector.mapping.engine import MappingError
from connector.pipeline.budget import open_governor


def open_adapter(
    config: RelayConfig, name: str, *, retry: RetryPolicy | None = None, deadline: Deadline | None = None,
    engine: Engine | None = None, priority: Priority | str = Priority.BACKGROUND,
) -> CrmAdapter:
    """The adapter for connection ``name`` of ``config``, with the connection's own settings.

    The connection's ``write_batch_size`` reaches the adapter, so every write call carries
    at most that many records (admins lower it when CRM-side triggers or locks need smaller
    batches); so do the email subscription types consent.yaml names for its kind.

    Args:
        config: The validated configuration.
        name: The connection's name in ``config/relay.yaml``.
        retry: The retry policy (the adapters' default when omitted).
        deadline: The run's deadline (see ``connector.crms.factory.run_deadline``): no call
            starts and no retry wait ends after it.
        engine: Relay's database: every call then spends the connection's API budget kept there,
            shared by every process (``connector.pipeline.budget``); None: calls are not held.
        priority: With ``engine``: ``realtime`` for events runs and form capture (may spend the
            reserve), ``background`` for full and incremental syncs.

    Raises:
        KeyError: naming the known connections when ``name`` is not one of them.
    """
    settings = config.connection(name)
    governor = open_governor(name, settings, engine, priority) if engine is not None else None
    return build_adapter(name, settings, retry=retry, deadline=deadline, governor=governor,
                         subscription_types=tuple(config.rules.consent.subscription_types.get(settings.kind, ())))


@dataclass(frozen=True)
class ResolvedConnection:
    """One connection with everything a run needs of it, looked up once when the run starts.

    Attributes:
        name: The connection's name in ``relay.yaml``.
        settings: Its settings (its CRM unit's model).
        unit: Its CRM unit.
        mappings: Its mapping file.
        source: Where the mapping file is, for messages (``mappings/hubspot.yaml``).
        synced: The objects it syncs, in the order ``relay.yaml`` lists them.
        owners: The object its owners are read from.
        tasks: The object follow-up tasks are written to (None: the mapping has none; a run that
            would create a task then quarantines the record, naming the gap).
    """

    name: str
    settings: ConnectionSettings
    unit: CrmUnit
    mappings: MappingFile
    source: str
    synced: tuple[ObjectMapping, ...]
    owners: ObjectMapping
    tasks: ObjectMapping | None

    @property
    def account_objects(self) -> tuple[ObjectMapping, ...]:
        """Synced objects that hold accounts (read first: people are matched to them)."""
        return tuple(m for m in self.synced if m.entity == "account")

    @property
    def person_objects(self) -> tuple[ObjectMapping, ...]:
        """Synced objects that hold people."""
        return tuple(m for m in self.synced if m.entity == "person")

    @property
    def deal_objects(self) -> tuple[ObjectMapping, ...]:
        """Synced objects that hold deals (read after people: governed, not routed)."""
        return tuple(m for m in self.synced if m.entity == "deal")

    def mapping(self, object_name: str) -> ObjectMapping | None:
        """The mapping of ``object_name`` (synced or not), None when the file does not map it."""
        return self.mappings.objects.get(object_name)


def resolve_connection(config: RelayConfig, name: str) -> ResolvedConnection:
    """Look connection ``name`` up once: settings, unit, mapping file, synced objects, owners, tasks.

    Raises:
        KeyError: naming the known connections.
        MappingError: the mapping has no owner object (Relay could not resolve owners), or its
            task object has no idempotency-key field (a retried task would land twice).
    """
    settings = config.connection(name)
    mappings = config.mapping_for(name)
    owners = next((m for m in mappings.objects.values() if m.entity == "owner"), None)
    if owners is None:
        raise MappingError(f"the {mappings.crm} mapping has no object with entity: owner; Relay cannot resolve owners")
    tasks = next((m for m in mappings.objects.values() if m.entity == "task"), None)
    if tasks is not None and not any(fm.canonical == "idempotency_key" for fm in tasks.write_fields()):
        raise MappingError(f"{mappings.crm} task object {tasks.name}: map canonical 'idempotency_key' to a unique "
                           "external-id field so retried task writes land once")
    return ResolvedConnection(
        name=name, settings=settings, unit=crm_unit(settings.kind), mappings=mappings,
        source=f"mappings/{settings.mapping_name}.yaml",
        synced=tuple(mappings.objects[obj] for obj in settings.objects), owners=owners, tasks=tasks,
    )
