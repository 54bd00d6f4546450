"""Problems found while loading Relay's configuration, and the error that carries them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_NO_VALUE = object()


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in one configuration file.

    Attributes:
        file: Path of the file as the admin would type it (e.g. ``config/relay.yaml``).
        key_path: Where in the file, relative to its top level, e.g. ``rules[2].group``.
            Empty when the problem concerns the whole file.
        value: The offending value as found in the file (``None`` when a key is missing).
        message: What is wrong, in words a RevOps admin understands.
        line: 1-based line number in the file when known.
        column: 1-based column number when known.
    """

    file: str
    key_path: str
    value: Any
    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.key_path:
            return f"{where}: {self.key_path}: {self.message}"
        return f"{where}: {self.message}"


class ConfigError(Exception):
    """Raised when configuration does not load; holds every problem found, in file order."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        header = f"{count} configuration problem{'s' if count != 1 else ''}"
        super().__init__("\n".join([f"{header}:", *(f"  {p}" for p in self.problems)]))
