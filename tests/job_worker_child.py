"""A worker process for tests/test_jobs.py: the real worker loop on a workspace and database.

``python tests/job_worker_child.py ROOT URL [HOLD_FILE]``: with ``HOLD_FILE``, the first SLA
escalation this process runs does its work and then writes the order's number to
``HOLD_FILE`` and waits, inside its open transaction, until the process is killed. The
loop ends when ``ROOT/stop`` exists.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.automation import escalation  # noqa: E402
from engine.automation.jobs import JOB_KINDS, JobWorker  # noqa: E402
from engine.automation.worker import Worker  # noqa: E402
from engine.db import connect  # noqa: E402
from engine.runtime import Runtime  # noqa: E402
from engine.workspace import open_workspace  # noqa: E402


async def main(root: Path, url: str, hold: Path | None) -> None:
    db = await connect(url)
    await db.start_pool()
    runtime = Runtime(open_workspace(root), db)

    async def held(rt: Runtime, payload: dict[str, Any]) -> None:
        await escalation.escalate(rt, payload)
        if hold is not None:
            hold.write_text(str(payload["order"]))
            await asyncio.sleep(3600)

    JOB_KINDS[escalation.JOB_KIND] = held
    worker = Worker(runtime, outbox=False, jobs=JobWorker(runtime, lease=2.0, batch=5),
                    say=lambda text: print(text, flush=True))
    while not (root / "stop").exists():
        await worker.run_once()
        await asyncio.sleep(0.05)
    await db.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]) if len(sys.argv) > 3 else None))
