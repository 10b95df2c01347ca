"""Placeholder, replaced by its implementation."""

from emulator.api import Routes

routes = Routes()
