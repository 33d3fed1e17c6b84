"""``engine/`` passes ``mypy --strict`` (settings under ``[tool.mypy]`` in pyproject.toml)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parents[1]


def test_engine_passes_mypy_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # mypy reads pyproject.toml from the working directory
    report, errors, status = api.run(["--strict", "engine", "ui"])
    assert status == 0, f"mypy found problems:\n{report}{errors}"
