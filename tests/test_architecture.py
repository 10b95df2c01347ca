"""The dependency rules between top-level packages, checked on the source's imports (AST).

* ``worker`` and ``auth_web`` never import each other;
* the domain core (``gcal``) imports neither, nor ``jobs``, nor arq or aiohttp's web server;
* ``jobs`` imports neither process package;
* nothing of the product imports ``emulator``, and ``emulator`` imports nothing of the product;
* ``devstack`` (the local launcher) starts processes and imports neither side; nothing of the
  product or the emulator imports it (tests and benchmarks start their Redis with
  ``devstack.redis_server``);
* the core's services are built in one composition root, ``gcal/services.py``: no other
  product module constructs them (a few named exceptions need only part of them).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT_DIR = Path(__file__).resolve().parent.parent
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
        assert (ROOT_DIR / package / "__init__.py").is_file(), f"{package} is not a package"
    assert violations(ROOT_DIR) == []


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


# The services of the core, and the product modules other than the root allowed to build some.
SERVICE_CLASSES = frozenset(
    {
        "Accounts",
        "CalendarClient",
        "Cipher",
        "ConsentStates",
        "Notifier",
        "OAuthClient",
        "RateLimiter",
        "RedisKeys",
        "TokenStore",
        "cipher_for",
    }
)
COMPOSITION_ROOT = "gcal/services.py"
BUILDERS_ALLOWED = {
    # Key rotation runs without the rest of the service: Redis and the cipher only.
    "gcal/__main__.py": {"Cipher", "RedisKeys", "TokenStore"},
    # arq needs the queue and health-key names before on_startup opens the services.
    "worker/factory.py": {"RedisKeys"},
    # The health probe reads the health key without starting a worker.
    "worker/__main__.py": {"RedisKeys"},
    # The jobs CLI is a producer, as any service is: it needs the Redis names only.
    "jobs/cli.py": {"RedisKeys"},
    # The cipher builds itself from settings (its own module).
    "gcal/crypto.py": {"Cipher"},
}


def constructions(root: Path) -> list[str]:
    """One line per (file, service) that a product module outside the root constructs."""
    found = set()
    for package in PRODUCT:
        for path in sorted((root / package).rglob("*.py")):
            name = str(path.relative_to(root))
            if name == COMPOSITION_ROOT:
                continue
            allowed = BUILDERS_ALLOWED.get(name, set())
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    called = node.func.id
                    if called in SERVICE_CLASSES and called not in allowed:
                        found.add(f"{name} builds {called}")
    return sorted(found)


def test_services_are_built_in_the_composition_root_only() -> None:
    assert constructions(ROOT_DIR) == []


def test_the_root_check_catches_a_second_builder(tmp_path: Path) -> None:
    (tmp_path / "auth_web").mkdir()
    (tmp_path / "auth_web" / "app.py").write_text("notifier = Notifier(redis, keys)\n")
    assert constructions(tmp_path) == ["auth_web/app.py builds Notifier"]
