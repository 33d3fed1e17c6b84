"""API fuzzing, the long run: schemathesis against every example workspace, on SQLite and PostgreSQL.

For each example (``tests.fuzz_helpers.FUZZ_USERS``) and database: the workspace is applied,
``routecard serve`` started, a few work orders created, and every operation of the server's
own OpenAPI document fuzzed with ``--examples`` generated requests per operation and mode
(valid, invalid) as the example's supervisor ("admin") and as a plain agent. Prints, per run,
the operations, the requests sent and the failures by class; the failures in full (each with
a curl command to replay it) go to bench/out/fuzz_api.txt. Exits 1 when anything was found.
tests/test_fuzz_api.py is the bounded version CI runs.

    .venv/bin/python bench/fuzz_api.py [--examples 100] [--seed N] [--only contract-agency] [--sqlite-only]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pgdb import DEFAULT_SERVER, scratch_database  # noqa: E402
from tests.fuzz_helpers import FUZZ_USERS, Report, fuzz, serving  # noqa: E402

OUT = ROOT / "bench" / "out"


def run_one(example: str, database_url: str, examples: int, seed: int | None) -> dict[str, Report]:
    """Serve ``example`` on ``database_url`` and fuzz it as each of its users."""
    with tempfile.TemporaryDirectory() as tmp, serving(example, database_url, Path(tmp)) as target:
        return {who: fuzz(target, login, max_examples=examples, seed=seed)
                for who, (login, _roles) in FUZZ_USERS[example].items()}


async def each_run(args: argparse.Namespace) -> AsyncIterator[tuple[str, str, str, Report]]:
    """(database, example, user, report) for every run; the fuzzing runs in a thread (it starts its own loops)."""
    for example in args.only or list(FUZZ_USERS):
        with tempfile.TemporaryDirectory() as tmp:
            reports = await asyncio.to_thread(run_one, example, f"sqlite:///{tmp}/fuzz.db", args.examples, args.seed)
        for who, report in reports.items():
            yield "SQLite", example, who, report
        if args.sqlite_only:
            continue
        async with scratch_database(args.server) as url:
            if url is not None:
                reports = await asyncio.to_thread(run_one, example, url, args.examples, args.seed)
                for who, report in reports.items():
                    yield "PostgreSQL", example, who, report


async def run(args: argparse.Namespace) -> Counter[str]:
    """Every run, printed as it ends; the failures by class over all of them."""
    totals: Counter[str] = Counter()
    OUT.mkdir(parents=True, exist_ok=True)
    with (OUT / "fuzz_api.txt").open("w") as details:
        print(f"{'database':<11} {'example':<21} {'user':<6} {'operations':>10} {'requests':>9} {'failures':>8} "
              f"{'s':>6}", flush=True)
        async for database, example, who, report in each_run(args):
            found = report.by_class()
            totals += found
            print(f"{database:<11} {example:<21} {who:<6} {len(report.operations):>10} "
                  f"{sum(report.examples.values()):>9} {sum(found.values()):>8} {report.seconds:>6.0f}", flush=True)
            for title, count in found.most_common():
                print(f"    {count:>6}  {title}", flush=True)
            if report.found:
                details.write(f"== {database} {example} {who}\n\n{report.describe()}\n\n")
    return totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=100, help="generated requests per operation and mode")
    parser.add_argument("--seed", type=int, default=None, help="a random seed (default: derandomized, repeatable)")
    parser.add_argument("--only", action="append", choices=sorted(FUZZ_USERS), help="an example (repeatable)")
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--server", default=DEFAULT_SERVER, help="PostgreSQL server URL")
    args = parser.parse_args()
    started = time.perf_counter()
    totals = asyncio.run(run(args))
    print(f"failures by class, all runs: {dict(totals) or 'none'}; {time.perf_counter() - started:.0f} s")
    if totals:
        print(f"details: {OUT / 'fuzz_api.txt'}")
    return 1 if totals else 0


if __name__ == "__main__":
    sys.exit(main())
