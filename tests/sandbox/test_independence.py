"""``crm_sandbox`` stands alone: no module of it imports Relay (``connector``, ``jobs``) or the tests.

The sandboxes are a second, independent implementation of the CRM APIs; an import of Relay would let
a mistake in Relay's adapters cancel out against the same mistake here, and would stop the package
from being installed and used without Relay.
"""

from __future__ import annotations

import ast
from pathlib import Path

import crm_sandbox

FORBIDDEN = ("connector", "jobs", "tests", "bench")
PACKAGE_DIR = Path(crm_sandbox.__file__).parent


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)


def _imports(source: str, module: str) -> list[tuple[int, str]]:
    """Every module the source of ``module`` imports (absolute names, relative ones resolved), with its line.

    ``import_module("...")`` and ``__import__("...")`` with a literal name count as imports too.
    """
    module_parts = module.split(".")
    is_package = module_parts[-1] == "__init__"
    if is_package:
        module_parts.pop()
    found = []
    for node in ast.walk(ast.parse(source, filename=module)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module_parts if is_package else module_parts[:-1]
                base = package[: len(package) - (node.level - 1)]
                found.append((node.lineno, ".".join([*base, *([node.module] if node.module else [])])))
            else:
                found.append((node.lineno, node.module or ""))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module", "__import__"
        ) and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            found.append((node.lineno, node.args[0].value))
    return found


def test_the_package_has_modules_to_check() -> None:
    modules = list(PACKAGE_DIR.rglob("*.py"))
    assert len(modules) > 40
    assert {"registry.py", "tls.py", "cli.py", "__main__.py"} <= {m.name for m in modules}


def test_no_module_of_crm_sandbox_imports_relay() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE_DIR.parent)}:{line} imports {name}"
        for path in sorted(PACKAGE_DIR.rglob("*.py"))
        for line, name in _imports(path.read_text(encoding="utf-8"), _module_name(path))
        if name.split(".")[0] in FORBIDDEN
    ]
    assert offenders == []


def test_the_import_walk_sees_relative_and_dynamic_imports() -> None:
    """The check above would catch ``from ..x import``, ``import jobs.tasks`` and ``import_module("connector")``."""
    source = (
        "from ..registry import get\n"
        "from . import faults\n"
        "import importlib, jobs.tasks\n"
        "def later():\n"
        "    from connector.cli import app\n"
        "    return importlib.import_module('connector.config')\n"
    )
    names = [name for _, name in _imports(source, "crm_sandbox.salesforce.sample")]
    assert names == [
        "crm_sandbox.registry", "crm_sandbox.salesforce", "importlib", "jobs.tasks", "connector.cli", "connector.config",
    ]
