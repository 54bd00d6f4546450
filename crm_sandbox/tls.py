"""HTTPS for the sandbox CRMs: a throwaway certificate authority and a server certificate it issued.

Some clients insist on ``https://`` (simple-salesforce builds every URL with it; many HTTP stacks
refuse plain HTTP for anything that carries a token). Rather than turning certificate checks off in
those clients, the sandbox serves TLS with a certificate for ``127.0.0.1``, ``::1`` and ``localhost``
issued by a certificate authority made for the purpose with ``trustme``. A client trusts that one CA
(``REQUESTS_CA_BUNDLE``/``SSL_CERT_FILE``, ``verify=`` or ``ssl_ca_cert``) and connects unchanged.

The CA is throwaway by default (a temporary directory, removed on :meth:`SandboxTLS.cleanup`). Given a
directory that already holds ``ca.pem`` and ``ca-key.pem``, the same CA is reused, so a client that
trusts it keeps working across restarts; only the server certificate is issued afresh.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import trustme

__all__ = ["LOOPBACK_NAMES", "SandboxTLS", "SandboxTLSError", "resolve_tls"]

LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")
"""Names every sandbox server certificate is valid for."""

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
CERT_FILE = "server.pem"
KEY_FILE = "server-key.pem"
_WILDCARD_HOSTS = ("", "0.0.0.0", "::")


class SandboxTLSError(RuntimeError):
    """The TLS material could not be made or read (names the directory and the file)."""


class SandboxTLS:
    """A CA bundle for clients and a certificate and key for the sandbox servers, as PEM files.

    One instance can serve several sandboxes: they then share one CA, so a client needs one bundle.

    Args:
        directory: where the PEM files go. None: a fresh temporary directory, removed by
            :meth:`cleanup`. An existing directory holding ``ca.pem`` and ``ca-key.pem`` keeps its CA.
        names: host names or IP addresses the server certificate is valid for, besides
            :data:`LOOPBACK_NAMES` (e.g. the name a container is reached by). Wildcard bind
            addresses (``0.0.0.0``, ``::``) are skipped: no client connects to them.

    Attributes:
        ca_bundle: the CA certificate (PEM) clients trust.
        cert_file: the server certificate chain (PEM).
        key_file: the server's private key (PEM, readable by the owner only).
        names: the names the server certificate is valid for.

    Raises:
        SandboxTLSError: when the directory cannot be written or holds a CA that cannot be read.
    """

    def __init__(self, directory: Path | None = None, names: Iterable[str] = ()) -> None:
        self._owns_directory = directory is None
        self.directory = Path(tempfile.mkdtemp(prefix="crm-sandbox-tls-")) if directory is None else Path(directory)
        self.names = _unique([*LOOPBACK_NAMES, *(n for n in names if n not in _WILDCARD_HOSTS)])
        for name in self.names:
            _check_name(name)
        self.ca_bundle = self.directory / CA_FILE
        self.cert_file = self.directory / CERT_FILE
        self.key_file = self.directory / KEY_FILE
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            ca = self._certificate_authority()
            leaf = ca.issue_cert(*self.names, common_name="crm_sandbox")
            leaf.private_key_pem.write_to_path(str(self.key_file))
            os.chmod(self.key_file, 0o600)
            with self.cert_file.open("wb") as out:
                for pem in leaf.cert_chain_pems:
                    out.write(pem.bytes())
        except OSError as exc:
            raise SandboxTLSError(f"cannot write the sandbox TLS files in {self.directory}: {exc}") from exc

    def _certificate_authority(self) -> trustme.CA:
        key_path = self.directory / CA_KEY_FILE
        if self.ca_bundle.exists() and key_path.exists():
            try:
                return trustme.CA.from_pem(self.ca_bundle.read_bytes(), key_path.read_bytes())
            except (ValueError, TypeError) as exc:
                raise SandboxTLSError(
                    f"{self.ca_bundle} and {key_path} are not a PEM certificate and key of one CA ({exc}); "
                    "delete both to have a new CA made"
                ) from exc
        ca = trustme.CA(organization_name="crm_sandbox", organization_unit_name="throwaway sandbox CA")
        ca.cert_pem.write_to_path(str(self.ca_bundle))
        ca.private_key_pem.write_to_path(str(key_path))
        os.chmod(key_path, 0o600)
        return ca

    def cleanup(self) -> None:
        """Remove the temporary directory (a directory given by the caller is kept, CA included)."""
        if self._owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __repr__(self) -> str:
        return f"SandboxTLS(ca_bundle={str(self.ca_bundle)!r}, names={self.names!r})"


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def _check_name(name: str) -> None:
    """A certificate name must be an IP address or a DNS name; say which one is neither."""
    try:
        ipaddress.ip_address(name)
        return
    except ValueError:
        pass
    labels = name.rstrip(".").split(".")
    if not name or not all(label and len(label) <= 63 and label.replace("-", "").isalnum() for label in labels):
        raise SandboxTLSError(f"TLS name {name!r} is neither an IP address nor a DNS host name")


def resolve_tls(tls: SandboxTLS | bool, host: str) -> tuple[SandboxTLS | None, bool]:
    """The TLS material a sandbox's ``start(tls=...)`` serves with, and whether the sandbox owns it.

    ``False``: plain HTTP. ``True``: a throwaway CA of the sandbox's own (removed when it stops),
    valid for the loopback names and ``host``. A :class:`SandboxTLS`: shared, the caller cleans it up.
    """
    if isinstance(tls, SandboxTLS):
        return tls, False
    if tls is True:
        return SandboxTLS(names=[host]), True
    if tls is False:
        return None, False
    raise TypeError(f"tls must be True, False or a SandboxTLS, got {tls!r}")
