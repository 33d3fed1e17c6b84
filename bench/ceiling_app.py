"""The ceiling for the API benchmark: a bare Litestar route doing one raw INSERT per request.

Same framework, same server, same database layer (engine.db: SQLite on one shared
connection, PostgreSQL through a pool) as Routecard, minus everything Routecard does.

    python bench/ceiling_app.py DATABASE_URL PORT
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvicorn  # noqa: E402
from litestar import Litestar, post  # noqa: E402

from engine.db import Database, connect  # noqa: E402

DB: dict[str, Database] = {}


@post("/insert", status_code=201)
async def insert(data: dict[str, object]) -> dict[str, int]:
    db = DB["db"]
    async with db.transaction():
        rows = await db.fetch(
            "INSERT INTO bench_ceiling (title, payload, created_at) VALUES ({}, {}, {}) RETURNING id",
            str(data.get("title", "")), str(data), dt.datetime.now(dt.timezone.utc))
    return {"id": int(rows[0]["id"])}


def create_app(url: str) -> Litestar:
    async def startup() -> None:
        db = await connect(url)
        await db.start_pool()
        serial = "INTEGER PRIMARY KEY" if db.dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
        await db.execute(f"CREATE TABLE IF NOT EXISTS bench_ceiling (id {serial}, title TEXT, payload TEXT, "
                         "created_at TIMESTAMPTZ)")
        DB["db"] = db

    async def shutdown() -> None:
        await DB["db"].close()

    return Litestar([insert], on_startup=[startup], on_shutdown=[shutdown])


if __name__ == "__main__":
    uvicorn.run(create_app(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
