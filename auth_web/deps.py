"""The auth_web app's dependencies: one frozen bundle, one typed door (``deps(request)``)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from auth_web.metrics import Metrics
from gcal.services import Services


@dataclass(frozen=True, slots=True)
class Deps:
    services: Services
    metrics: Metrics


DEPS: web.AppKey[Deps] = web.AppKey("deps", Deps)


def deps(request: web.Request) -> Deps:
    return request.app[DEPS]
