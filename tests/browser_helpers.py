"""Browser tests: a real ``routecard demo`` server over HTTP, driven by Playwright in the system's Chromium.

Chromium comes from the operating system (Debian's ``chromium``; ``make test`` installs it
where it may); Playwright never downloads a browser. Without Chromium the browser tests
are skipped with a message, except in CI (``CI=true`` or ``ROUTECARD_REQUIRE_POSTGRES=1``,
as ``.ci/run`` sets), where they fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
"""Screenshots of the main screens land here (git-ignored), one folder per database."""

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
REQUIRED = os.environ.get("CI") == "true" or os.environ.get("ROUTECARD_REQUIRE_POSTGRES") == "1"


def chromium() -> str:
    """The system Chromium's path; skip (or, in CI, fail) when there is none."""
    found = os.environ.get("ROUTECARD_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        message = "no Chromium: install Debian's `chromium` package (make test does, as root) to run the browser tests"
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def example_site(example: Path, database_url: str, dialect: str, tmp_path: Path,
                 extra: dict[str, str] | None = None) -> Iterator[tuple[str, Path]]:
    """A copy of ``example`` (plus ``extra`` files by relative path) served by ``demo_server``;
    yields its base URL and the folder for this database's screenshots."""
    workspace = tmp_path / "workspace"
    shutil.copytree(example, workspace)
    for name, text in (extra or {}).items():
        (workspace / name).parent.mkdir(parents=True, exist_ok=True)
        (workspace / name).write_text(text, encoding="utf-8")
    shots = ARTIFACTS / dialect
    shots.mkdir(parents=True, exist_ok=True)
    with demo_server(workspace, database_url, tmp_path / "server.log") as base:
        yield base, shots


@contextlib.contextmanager
def demo_server(workspace: Path, database_url: str, log: Path) -> Iterator[str]:
    """``routecard demo WORKSPACE`` serving on a free loopback port; yields its base URL."""
    port = free_port()
    command = [sys.executable, "-c", "import sys; from engine.cli import main; sys.exit(main())",
               "demo", str(workspace), "--db", database_url, "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    with log.open("w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                if process.poll() is not None:
                    raise AssertionError(f"routecard demo stopped early:\n{log.read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(f"{base}/health", timeout=2) as answer:
                        if answer.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"routecard demo did not answer in time:\n{log.read_text()[-3000:]}")
                time.sleep(0.2)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (skipped outside CI when it is missing, required in CI)."""
    executable = chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def sign_in(page: Any, base: str, login: str, target: str = "/") -> None:
    """Open ``target`` and sign in on the login page it leads to (demo password)."""
    page.goto(base + target)
    page.fill("#login", login)
    page.fill("#password", "demo")
    page.click("button[type=submit]")
    page.wait_for_selector("header.top nav")
    # and htmx has taken over the page's forms: a click before that submits the form natively
    # (a GET of the page itself), and what was typed is lost - seen once on a loaded machine
    page.wait_for_load_state("load")
