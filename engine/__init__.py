"""Routecard's engine: definitions -> compiled model -> runtime.

The engine never imports ``ui`` or ``plugins``; those depend on it. Plugin authors
mark their hook implementations with ``engine.hookimpl`` (see ``engine.hookspec``).
"""

from .hookspec import hookimpl

__version__ = "0.1.0"
__all__ = ["__version__", "hookimpl"]
