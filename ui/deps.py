"""Dependencies handlers ask for by name."""

from __future__ import annotations

from litestar.datastructures import State
from litestar.di import NamedDependency

from engine.runtime import Runtime

RuntimeDep = NamedDependency[Runtime]
"""The app's ``Runtime`` (one per app, made when the app starts)."""


def provide_runtime(state: State) -> Runtime:
    runtime: Runtime = state.runtime
    return runtime
