"""Placeholder, replaced by its implementation."""

from emulator.api import Routes

routes = Routes()


def setup(app: object) -> None:
    """Placeholder."""
