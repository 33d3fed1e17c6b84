"""Routecard's web layer (Litestar JSON API and HTMX screens); it depends on ``engine``, never the reverse."""
