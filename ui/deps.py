"""Dependencies handlers ask for by name."""

from __future__ import annotations

from collections.abc import Callable

from litestar import Litestar
from litestar.di import NamedDependency

from engine.runtime import Runtime

RuntimeDep = NamedDependency[Runtime]
"""The app's ``Runtime`` (one per app, made when the app starts)."""


def runtime_provider(app: Callable[[], Litestar]) -> Callable[[], Runtime]:
    """The provider of ``RuntimeDep``: the runtime of the app ``app()`` returns.

    It takes no parameters, so Litestar has none to check on each request (a provider
    asking for the app's ``state`` had its signature parsed per request: some 15 µs of each).
    """

    def provide_runtime() -> Runtime:
        runtime: Runtime = app().state.runtime
        return runtime

    return provide_runtime
