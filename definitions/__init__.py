"""The definition language's JSON Schemas and the starter workspace (data only).

The ``*.schema.json`` files are generated from ``engine.model`` by ``routecard schema``;
``starter/`` is what ``routecard init`` copies into a new workspace.
"""
