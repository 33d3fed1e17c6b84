"""Routecard's built-in plugins, registered through the same entry points a third-party plugin uses.

Each module is one plugin, declared in pyproject.toml under
``[project.entry-points.routecard]`` (``engine.plugins.BUILTINS`` names them):

- ``email``: the email channel of the outbox (mail through the workspace's SMTP server);
- ``webhook``: signed outbound HTTP on events (through the outbox) and the ``webhook.post`` action;
- ``invoice``: the ``invoice.generate`` order action and the invoice panel of the order page.
"""

BUILTINS = ("plugins.email", "plugins.webhook", "plugins.invoice")
"""The built-in plugin modules, in the order they are declared."""
