"""The ceilings of the API benchmark: a Litestar route doing one raw INSERT per request.

- ``in-routecard``: Routecard's own server (the app ``routecard serve`` builds, served the
  same way) with the bare route added, so the route passes the same middleware as every
  API call: request id and log line, host check, token authentication. This is the
  ceiling the goal is measured against ("the same server's bare insert endpoint").
- ``bare``: the route alone in an otherwise empty Litestar app, same server (uvicorn) and
  database layer (engine.db): what the framework costs with nothing of Routecard's.

    python bench/ceiling_app.py in-routecard WORKSPACE DATABASE_URL PORT
    python bench/ceiling_app.py bare DATABASE_URL PORT
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvicorn  # noqa: E402
from litestar import Litestar, Request, post  # noqa: E402

from engine.db import Database, connect  # noqa: E402

PATH = "/bench/insert"


async def create_table(db: Database) -> None:
    serial = "INTEGER PRIMARY KEY" if db.dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
    await db.execute(f"CREATE TABLE IF NOT EXISTS bench_ceiling (id {serial}, title TEXT, payload TEXT, "
                     "created_at TIMESTAMPTZ)")


INSERT = "INSERT INTO bench_ceiling (title, payload, created_at) VALUES ({}, {}, {}) RETURNING id"


async def insert_row(db: Database, data: dict[str, object]) -> dict[str, int]:
    """One INSERT and nothing else: on PostgreSQL a statement on its own (no BEGIN and COMMIT
    to send), on SQLite in a transaction of the one writer, as every write there."""
    values = (str(data.get("title", "")), str(data), dt.datetime.now(dt.timezone.utc))
    if db.dialect == "postgresql":
        rows = await db.fetch(INSERT, *values)
    else:
        async with db.transaction():
            rows = await db.fetch(INSERT, *values)
    return {"id": int(rows[0]["id"])}


@post(PATH, status_code=201)
async def in_routecard(request: Request[Any, Any, Any], data: dict[str, object]) -> dict[str, int]:
    return await insert_row(request.app.state.runtime.db, data)


DB: dict[str, Database] = {}


@post(PATH, status_code=201)
async def bare(data: dict[str, object]) -> dict[str, int]:
    return await insert_row(DB["db"], data)


def bare_app(url: str) -> Litestar:
    async def startup() -> None:
        db = await connect(url)
        await db.start_pool()
        DB["db"] = db

    async def shutdown() -> None:
        await DB["db"].close()

    return Litestar([bare], on_startup=[startup], on_shutdown=[shutdown])


def main(argv: list[str]) -> None:
    if argv[0] == "bare":
        url, port = argv[1], int(argv[2])
        uvicorn.run(bare_app(url), host="127.0.0.1", port=port, log_level="warning")
        return
    from engine.cli.running import serve
    from engine.workspace import open_workspace

    root, url, port = Path(argv[1]), argv[2], int(argv[3])
    serve(root, open_workspace(root), url, host="127.0.0.1", port=port, extend=lambda app: app.register(in_routecard))


if __name__ == "__main__":
    main(sys.argv[1:])
