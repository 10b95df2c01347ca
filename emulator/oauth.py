"""Placeholder."""

from aiohttp import web


def setup(app: web.Application) -> None:
    """Placeholder."""
