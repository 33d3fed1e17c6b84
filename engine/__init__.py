"""Routecard's engine: definitions -> compiled model -> runtime.

The engine never imports ``ui`` or ``plugins``; those depend on it.
"""

__version__ = "0.1.0"
