"""What a sandbox CRM is to its callers: a :class:`SandboxKind` that makes :class:`Sandbox` instances.

Each CRM's package (``crm_sandbox.salesforce``, ``crm_sandbox.hubspot``) defines one module-level
``SANDBOX = SandboxKind(...)``; :mod:`crm_sandbox.registry` finds them. Callers (``relay sandbox``,
``relay demo``, ``python -m crm_sandbox``, test harnesses) iterate the registry and use only what is
declared here, so a third CRM's sandbox needs no change to any of them.
"""

from __future__ import annotations

import shlex
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from crm_sandbox.common import FaultInjector, FaultSettings, Ledger
from crm_sandbox.runner import SandboxServer, SandboxServerError
from crm_sandbox.tls import SandboxTLS, resolve_tls

__all__ = ["ClientSettings", "Sandbox", "SandboxKind", "SandboxOption", "export_line"]


def export_line(env: Mapping[str, str]) -> str:
    """``export NAME=value ...`` for a POSIX shell, values quoted where they need it."""
    return "export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in env.items())


@dataclass(frozen=True)
class ClientSettings:
    """How a client reaches one running sandbox.

    Attributes:
        name: the sandbox kind's name (``salesforce``).
        label: its display name (``Salesforce``).
        base_url: where it listens, ``http://`` or ``https://``, no trailing slash.
        credentials: what a client logs in with, by role (``client_id``, ``access_token``, ...).
        env: environment variables a client (Relay among them) reads, in print order.
        try_command: one shell command that shows the sandbox answering (a ``curl``).
        ca_bundle: the CA certificate to trust when ``base_url`` is ``https://`` (None on plain HTTP).
    """

    name: str
    label: str
    base_url: str
    credentials: Mapping[str, str]
    env: Mapping[str, str]
    try_command: str
    ca_bundle: Path | None = None

    def export_line(self) -> str:
        """``export NAME=value ...`` for a POSIX shell, values quoted where they need it."""
        return export_line(self.env)


class Sandbox(Protocol):
    """One sandbox CRM: its state, HTTP app, call ledger and fault injector.

    ``SalesforceSandbox`` and ``HubSpotSandbox`` are the two implementations; a third CRM's sandbox
    provides the same members.
    """

    ledger: Ledger
    faults: FaultInjector
    server: SandboxServer | None
    tls: SandboxTLS | None

    def start(self, host: str = "127.0.0.1", port: int = 0, *, tls: SandboxTLS | bool = False) -> SandboxServer:
        """Serve on ``host:port`` in a background thread (port 0: the OS picks), over TLS when asked."""
        ...

    def stop(self) -> None:
        """Stop serving; save the state file when one is configured."""
        ...

    @property
    def url(self) -> str:
        """The base URL while running (``http://`` or ``https://``)."""
        ...

    def client_settings(self) -> ClientSettings:
        """URL, credentials and environment of a client of the running sandbox."""
        ...


class ServedSandbox(ABC):
    """What every sandbox CRM does alike: serve its app over HTTP or HTTPS, name its URL, stop and save.

    A kind sets :attr:`name`, builds ``app``, ``ledger``, ``faults`` and ``state_file`` in its
    ``__init__`` (after calling this one), and overrides the hooks for what it sends on its own
    (webhooks, outbound messages) and how its state is saved.
    """

    name: ClassVar[str]
    app: Any
    ledger: Ledger
    faults: FaultInjector
    state_file: Path | None

    def __init__(self) -> None:
        self.server: SandboxServer | None = None
        self.tls: SandboxTLS | None = None
        self._owns_tls = False

    def start(self, host: str = "127.0.0.1", port: int = 0, *, tls: SandboxTLS | bool = False) -> SandboxServer:
        """Serve on ``host:port`` (0: a free port) in a background thread; starts what the sandbox sends.

        Args:
            host: the interface to bind.
            port: the port; 0 lets the OS pick one (see ``server.url``).
            tls: serve HTTPS: ``True`` with a throwaway CA of this sandbox's own (:attr:`ca_bundle`),
                or with a shared :class:`SandboxTLS`. URLs the sandbox hands out then say ``https://``.
        """
        self.tls, self._owns_tls = resolve_tls(tls, host)
        self._start_delivery()
        try:
            self.server = SandboxServer(self.app, host=host, port=port, name=self.name, tls=self.tls).start()
        except BaseException:
            self.stop()
            raise
        self._serving(self.server)
        return self.server

    @property
    def url(self) -> str:
        """The base URL while running, e.g. ``http://127.0.0.1:8701``."""
        if self.server is None:
            raise SandboxServerError(f"{self.name} sandbox is not running")
        return self.server.url

    @property
    def ca_bundle(self) -> Path | None:
        """The CA certificate (PEM) a client trusts to reach this sandbox over HTTPS (None on plain HTTP)."""
        return self.tls.ca_bundle if self.tls is not None else None

    def curl_cacert(self) -> str:
        """``--cacert FILE `` for a curl command line when serving HTTPS, else nothing."""
        return f"--cacert {shlex.quote(str(self.tls.ca_bundle))} " if self.tls is not None else ""

    def stop(self) -> None:
        """Stop serving and sending; save the state to ``state_file`` when set; drop a throwaway CA."""
        if self.server is not None:
            self.server.stop()
            self.server = None
        self._stop_delivery()
        if self.state_file is not None:
            self._save_state(self.state_file)
        if self.tls is not None and self._owns_tls:
            self.tls.cleanup()
        self.tls, self._owns_tls = None, False

    def _start_delivery(self) -> None:
        """Start what the sandbox sends on its own (webhooks, outbound messages); nothing by default."""
        return None  # a hook: this kind has nothing of its own to do here

    def _serving(self, server: SandboxServer) -> None:
        """Called once the server listens (its URL is known); nothing by default."""
        return None  # a hook: this kind has nothing of its own to do here

    def _stop_delivery(self) -> None:
        """Stop what :meth:`_start_delivery` started; nothing by default."""
        return None  # a hook: this kind has nothing of its own to do here

    @abstractmethod
    def _save_state(self, path: Path) -> None:
        """Save the CRM's state to ``path``."""

    @abstractmethod
    def client_settings(self) -> ClientSettings:
        """URL, credentials and environment of a client of the running sandbox."""


@dataclass(frozen=True)
class SandboxOption:
    """A setting of one sandbox kind beyond the common ones (seed data, faults, state file, TLS).

    A command line offers it as ``--{kind}-{name}`` (underscores as dashes), e.g.
    ``--hubspot-webhook-url``; it is passed to the kind's factory as the keyword ``name``.

    Attributes:
        name: the factory's keyword argument.
        help: one line for ``--help``.
        type: ``str``, ``int`` or ``float``.
        default: the factory's default (shown in ``--help``; None: unset).
        metavar: the value's name in ``--help`` (default by type: ``TEXT``, ``N``, ``X``).
    """

    name: str
    help: str
    type: type = str
    default: Any = None
    metavar: str = ""

    @property
    def value_name(self) -> str:
        """The value's name in ``--help``."""
        return self.metavar or {int: "N", float: "X"}.get(self.type, "TEXT")

    @property
    def flag(self) -> str:
        """The option's name on a command line, without the kind prefix (``webhook-url``)."""
        return self.name.replace("_", "-")


@dataclass(frozen=True)
class SandboxKind:
    """A kind of sandbox CRM, as the registry lists it.

    Attributes:
        name: short lower-case name (``salesforce``); also the state file's stem and the CLI prefix.
        label: display name (``Salesforce``).
        factory: makes an instance: ``factory(seed_data, *, faults=..., state_file=..., **options)``.
        default_port: the port the foreground commands use unless told otherwise (8701, 8702, ...);
            in-process starts use port 0.
        description: one line on what the sandbox speaks.
        options: the kind's own settings (see :class:`SandboxOption`).
    """

    name: str
    label: str
    factory: Callable[..., Sandbox]
    default_port: int
    description: str = ""
    options: tuple[SandboxOption, ...] = field(default=())

    @property
    def state_file_name(self) -> str:
        """The file name of this kind's state inside a state directory (``salesforce.json``)."""
        return f"{self.name}.json"

    def create(
        self,
        seed_data: Any = None,
        *,
        faults: FaultSettings | None = None,
        state_file: Path | None = None,
        **options: Any,
    ) -> Sandbox:
        """A new, stopped sandbox.

        Args:
            seed_data: a ``SeedData`` from :func:`crm_sandbox.seed.generate`; the sandbox loads its
                CRM's part. Ignored when ``state_file`` exists (the saved state wins).
            faults: fault injection settings (None: no faults).
            state_file: JSON file the state is loaded from at creation and saved to at stop.
            options: the kind's own settings, by :attr:`SandboxOption.name`; None values are left out.

        Raises:
            ValueError: naming an option this kind does not have, or a value of the wrong type.
        """
        known = {option.name: option for option in self.options}
        given = {key: value for key, value in options.items() if value is not None}
        for key, value in given.items():
            option = known.get(key)
            if option is None:
                offered = ", ".join(sorted(known)) or "none"
                raise ValueError(f"{self.name} sandbox: unknown option {key!r} (its options: {offered})")
            if not _fits(value, option.type):
                raise ValueError(
                    f"{self.name} sandbox: option {key!r} must be {option.type.__name__}, got {value!r}"
                )
        return self.factory(seed_data, faults=faults, state_file=state_file, **given)

    def start(
        self,
        seed_data: Any = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultSettings | None = None,
        state_file: Path | None = None,
        tls: SandboxTLS | bool = False,
        **options: Any,
    ) -> Sandbox:
        """A new sandbox, serving: :meth:`create`, then ``start(host, port, tls=tls)``.

        Returns:
            The running sandbox; ``.url`` is its base URL, ``.client_settings()`` what a client needs.
        """
        sandbox = self.create(seed_data, faults=faults, state_file=state_file, **options)
        sandbox.start(host, port, tls=tls)
        return sandbox


def _fits(value: Any, kind: type) -> bool:
    if isinstance(value, bool):
        return kind is bool
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)
