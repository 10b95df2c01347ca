"""The dependency rules between top-level packages, checked on the source's imports (AST).

* ``worker`` and ``auth_web`` never import each other;
* the domain core (``gcal``) imports neither, nor ``jobs``, nor arq or aiohttp's web server;
* ``jobs`` imports neither process package;
* nothing of the product imports ``emulator``, and ``emulator`` imports nothing of the product;
* ``devstack`` (the local launcher) starts processes and imports neither side; nothing of the
  product or the emulator imports it (tests and benchmarks start their Redis with
  ``devstack.redis_server``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("gcal", "auth_web", "worker", "jobs")
PACKAGES = (*PRODUCT, "emulator", "devstack")

FORBIDDEN: dict[str, tuple[str, ...]] = {
    "gcal": ("auth_web", "worker", "jobs", "emulator", "devstack", "arq", "aiohttp.web"),
    "jobs": ("auth_web", "worker", "emulator", "devstack"),
    "worker": ("auth_web", "emulator", "devstack"),
    "auth_web": ("worker", "emulator", "devstack"),
    "emulator": (*PRODUCT, "devstack"),
    "devstack": (*PRODUCT, "emulator"),
}


def imported_modules(source: str, module: str) -> Iterator[str]:
    """Every absolute module name ``source`` (the module ``module``) imports."""
    package = module.rsplit(".", 1)[0] if "." in module else module
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                yield ".".join([*base, *([node.module] if node.module else [])])
            elif node.module:
                yield node.module
                # `from aiohttp import web` imports aiohttp.web.
                yield from (f"{node.module}.{alias.name}" for alias in node.names)


def violations(root: Path) -> list[str]:
    """One line per (file, forbidden package) that the file imports."""
    found: set[str] = set()
    for package, banned in FORBIDDEN.items():
        for path in sorted((root / package).rglob("*.py")):
            module = ".".join(path.relative_to(root).with_suffix("").parts)
            for name in imported_modules(path.read_text(), module):
                for ban in banned:
                    if name == ban or name.startswith(ban + "."):
                        found.add(f"{path.relative_to(root)} imports {ban}")
    return sorted(found)


def test_no_forbidden_import_edges() -> None:
    for package in PACKAGES:
        assert (ROOT / package / "__init__.py").is_file(), f"{package} is not a package"
    assert violations(ROOT) == []


def test_checker_catches_a_forbidden_edge(tmp_path: Path) -> None:
    (tmp_path / "gcal").mkdir()
    (tmp_path / "gcal" / "tokens.py").write_text("from aiohttp import web\nimport worker.main\n")
    (tmp_path / "emulator").mkdir()
    (tmp_path / "emulator" / "app.py").write_text("from gcal.settings import Settings\n")
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "jobs.py").write_text("from ..auth_web import app\n")
    assert violations(tmp_path) == [
        "emulator/app.py imports gcal",
        "gcal/tokens.py imports aiohttp.web",
        "gcal/tokens.py imports worker",
        "worker/jobs.py imports auth_web",
    ]
