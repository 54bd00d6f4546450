"""The sandbox CRMs there are, and a group of them running together.

Every sub-package of ``crm_sandbox`` that defines a module-level ``SANDBOX`` (a
:class:`~crm_sandbox.kinds.SandboxKind`) is a sandbox CRM: today ``salesforce`` and ``hubspot``.
A third CRM's sandbox is one more such package beside them; nothing here or in the callers changes.
A sandbox defined elsewhere (another distribution, a test) joins with :meth:`SandboxRegistry.register`.

Example:
    >>> from crm_sandbox.registry import SandboxGroup, available
    >>> sorted(available())                                    # doctest: +SKIP
    ['hubspot', 'salesforce']
    >>> with SandboxGroup(seed_data=generate(leads=50), tls=True) as group:   # doctest: +SKIP
    ...     for settings in group.client_settings():
    ...         print(settings.export_line())
"""

from __future__ import annotations

import importlib
import pkgutil
import shlex
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from crm_sandbox.common import FaultSettings
from crm_sandbox.kinds import ClientSettings, Sandbox, SandboxKind, export_line
from crm_sandbox.tls import SandboxTLS

__all__ = ["SANDBOXES", "SandboxGroup", "SandboxRegistry", "available", "get"]

_PACKAGE = "crm_sandbox"
_NOT_SANDBOXES = frozenset({"seed"})
"""Sub-packages known to hold no sandbox (not imported during discovery)."""


class SandboxRegistry(Mapping[str, SandboxKind]):
    """The sandbox kinds by name, in port order (Salesforce 8701, HubSpot 8702, ...).

    Discovery runs on first use (importing each CRM's package), not at import of ``crm_sandbox``.
    """

    def __init__(self) -> None:
        self._kinds: dict[str, SandboxKind] | None = None
        self._extra: list[SandboxKind] = []
        self._lock = threading.Lock()

    def _loaded(self) -> dict[str, SandboxKind]:
        with self._lock:
            if self._kinds is None:
                self._kinds = _ordered([*_discover(), *self._extra])
            return self._kinds

    def register(self, kind: SandboxKind) -> SandboxKind:
        """Add a sandbox kind defined outside ``crm_sandbox``'s sub-packages; returns it.

        Raises:
            ValueError: when its name or default port is taken by another kind.
        """
        with self._lock:
            current = list(self._kinds.values()) if self._kinds is not None else [*_discover(), *self._extra]
            self._kinds = _ordered([*current, kind])
            self._extra.append(kind)
        return kind

    def unregister(self, name: str) -> None:
        """Remove a kind added with :meth:`register` (the built-in ones stay)."""
        with self._lock:
            self._extra = [kind for kind in self._extra if kind.name != name]
            self._kinds = None

    def __getitem__(self, name: str) -> SandboxKind:
        kinds = self._loaded()
        try:
            return kinds[name]
        except KeyError:
            raise KeyError(f"no sandbox CRM named {name!r} (there are: {', '.join(kinds)})") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())

    def __repr__(self) -> str:
        return f"SandboxRegistry({', '.join(self._loaded())})"


def _discover() -> list[SandboxKind]:
    """The ``SANDBOX`` of every sub-package of ``crm_sandbox``."""
    package = importlib.import_module(_PACKAGE)
    kinds = []
    for module in pkgutil.iter_modules(package.__path__):
        if not module.ispkg or module.name.startswith("_") or module.name in _NOT_SANDBOXES:
            continue
        kind = getattr(importlib.import_module(f"{_PACKAGE}.{module.name}"), "SANDBOX", None)
        if kind is None:
            continue
        if not isinstance(kind, SandboxKind):
            raise TypeError(f"{_PACKAGE}.{module.name}.SANDBOX must be a SandboxKind, got {type(kind).__name__}")
        kinds.append(kind)
    return kinds


def _ordered(kinds: Iterable[SandboxKind]) -> dict[str, SandboxKind]:
    """Kinds by name in default-port order; a second kind with a taken name or port is refused."""
    by_name: dict[str, SandboxKind] = {}
    ports: dict[int, str] = {}
    for kind in kinds:
        if kind.name in by_name:
            raise ValueError(f"two sandbox CRMs are named {kind.name!r}")
        if kind.default_port in ports:
            raise ValueError(
                f"sandbox CRMs {ports[kind.default_port]!r} and {kind.name!r} both have default port {kind.default_port}"
            )
        by_name[kind.name] = kind
        ports[kind.default_port] = kind.name
    return dict(sorted(by_name.items(), key=lambda item: (item[1].default_port, item[0])))


SANDBOXES = SandboxRegistry()
"""Every sandbox CRM, by name (a read-only mapping; see :class:`SandboxRegistry`)."""


def available() -> dict[str, SandboxKind]:
    """Every sandbox CRM by name, in default-port order (a copy)."""
    return dict(SANDBOXES)


def get(name: str) -> SandboxKind:
    """The sandbox CRM called ``name``; KeyError names the ones there are."""
    return SANDBOXES[name]


class SandboxGroup:
    """Several sandbox CRMs started and stopped together, sharing seed data, faults and one TLS CA.

    Args:
        names: which sandboxes (None: every one in the registry), in any order; they start in
            default-port order.
        seed_data: a ``SeedData``, loaded by every sandbox (each takes its CRM's part).
        faults: fault settings, each sandbox deciding its own faults from them.
        host: the interface to bind.
        ports: port by sandbox name; a sandbox not named gets 0 (the OS picks). Pass
            ``{kind.name: kind.default_port for kind in ...}`` for the conventional ports.
        state_dir: keep each sandbox's state in ``state_dir/<name>.json`` (loaded at start, saved at
            stop); the directory is created.
        tls: serve HTTPS: ``True`` with one throwaway CA for all (in ``tls_dir``, else a temporary
            directory removed at stop), or a :class:`SandboxTLS` made by the caller.
        tls_dir: where the CA and certificates go with ``tls=True``; a CA already there is reused.
        tls_names: more names the certificate is valid for (besides 127.0.0.1, ::1, localhost, host).
        options: each sandbox's own settings, ``{name: {option: value}}`` (see ``SandboxKind.options``).

    Raises:
        KeyError: a name in ``names`` is not a sandbox CRM.
        ValueError: ``ports`` or ``options`` names a sandbox not in the group, or an option it lacks.
    """

    def __init__(
        self,
        names: Iterable[str] | None = None,
        *,
        seed_data: Any = None,
        faults: FaultSettings | None = None,
        host: str = "127.0.0.1",
        ports: Mapping[str, int] | None = None,
        state_dir: Path | None = None,
        tls: SandboxTLS | bool = False,
        tls_dir: Path | None = None,
        tls_names: Iterable[str] = (),
        options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        wanted = set(SANDBOXES) if names is None else set(names)
        for name in wanted:
            get(name)  # KeyError naming the sandboxes there are
        self.kinds = [kind for name, kind in SANDBOXES.items() if name in wanted]
        self.seed_data = seed_data
        self.faults = faults
        self.host = host
        self.ports = dict(ports or {})
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self._tls_request = tls
        self.tls_dir = tls_dir
        self.tls_names = tuple(tls_names)
        self.options = {name: dict(values) for name, values in (options or {}).items()}
        for what, names_given in (("ports", self.ports), ("options", self.options)):
            stray = sorted(set(names_given) - wanted)
            if stray:
                raise ValueError(f"{what} given for {', '.join(stray)}, not in this group ({', '.join(sorted(wanted))})")
        self.tls: SandboxTLS | None = None
        self._owns_tls = False
        self.sandboxes: dict[str, Sandbox] = {}

    def start(self) -> SandboxGroup:
        """Create and start every sandbox; if one fails, the ones already running are stopped."""
        if self.sandboxes:
            return self
        if isinstance(self._tls_request, SandboxTLS):
            self.tls = self._tls_request
        elif self._tls_request:
            self.tls = SandboxTLS(self.tls_dir, names=[self.host, *self.tls_names])
            self._owns_tls = True
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            for kind in self.kinds:
                state_file = self.state_dir / kind.state_file_name if self.state_dir is not None else None
                sandbox = kind.create(
                    self.seed_data, faults=self.faults, state_file=state_file, **self.options.get(kind.name, {})
                )
                sandbox.start(self.host, self.ports.get(kind.name, 0), tls=self.tls or False)
                self.sandboxes[kind.name] = sandbox
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every sandbox (last started first), saving state files; remove a throwaway CA."""
        for sandbox in reversed(list(self.sandboxes.values())):
            sandbox.stop()
        self.sandboxes.clear()
        if self.tls is not None and self._owns_tls:
            self.tls.cleanup()
        self.tls, self._owns_tls = None, False

    def __getitem__(self, name: str) -> Sandbox:
        try:
            return self.sandboxes[name]
        except KeyError:
            raise KeyError(f"no running sandbox {name!r} in this group (running: {', '.join(self.sandboxes)})") from None

    def __iter__(self) -> Iterator[Sandbox]:
        return iter(self.sandboxes.values())

    @property
    def ca_bundle(self) -> Path | None:
        """The one CA certificate (PEM) that every sandbox of the group is trusted by (None on plain HTTP)."""
        return self.tls.ca_bundle if self.tls is not None else None

    def client_settings(self) -> list[ClientSettings]:
        """Each running sandbox's client settings, in start order."""
        return [sandbox.client_settings() for sandbox in self.sandboxes.values()]

    def env(self) -> dict[str, str]:
        """Every client environment variable of the group, with ``REQUESTS_CA_BUNDLE`` and
        ``SSL_CERT_FILE`` naming the CA when serving TLS."""
        merged: dict[str, str] = {}
        for settings in self.client_settings():
            merged.update(settings.env)
        merged.update(tls_env(self.ca_bundle))
        return merged

    def describe(self) -> str:
        """What ``relay sandbox`` and ``python -m crm_sandbox`` print: per sandbox its URL, export
        line and a command to try, then the CA to trust, the ledgers and how to change faults.

        Lines are meant to be printed as they are (never wrapped): an export line is copied whole.
        """
        lines: list[str] = []
        settings_list = self.client_settings()
        width = max((len(s.label) for s in settings_list), default=0)
        for settings in settings_list:
            lines += [
                f"{settings.label.ljust(width)}  {settings.base_url}",
                f"  {settings.export_line()}",
                f"  try: {settings.try_command}",
                "",
            ]
        if self.ca_bundle is not None:
            names = ", ".join(self.tls.names) if self.tls is not None else ""
            lines += [
                f"TLS: certificates for {names} from a throwaway CA; trust it:",
                f"  {export_line(tls_env(self.ca_bundle))}",
                "",
            ]
        if settings_list:
            cacert = f"--cacert {shlex.quote(str(self.ca_bundle))} " if self.ca_bundle is not None else ""
            lines.append("Call ledgers: " + "  ".join(f"{s.base_url}/__sandbox/ledger" for s in settings_list))
            lines.append(
                f"Faults at run time: curl {cacert}-X PUT -d '{{\"rate_limit\": 0.1}}' "
                f"{settings_list[0].base_url}/__sandbox/faults"
            )
        return "\n".join(lines)

    def __enter__(self) -> SandboxGroup:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def tls_env(ca_bundle: Path | None) -> dict[str, str]:
    """``REQUESTS_CA_BUNDLE`` (read by requests) and ``SSL_CERT_FILE`` (OpenSSL's default CA file: Python's
    ``ssl``, urllib3, httpx) naming the CA; empty without TLS.

    Both replace the system's CAs for the processes that read them: set them in a shell that talks to
    the sandboxes only.
    """
    if ca_bundle is None:
        return {}
    return {"REQUESTS_CA_BUNDLE": str(ca_bundle), "SSL_CERT_FILE": str(ca_bundle)}
