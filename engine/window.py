"""Counting events per key in a sliding time window, in memory (rate limits of one process)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable


class SlidingWindow:
    """The times of recent events per key, those older than ``window`` seconds forgotten.

    At most ``max_keys`` keys are kept; beyond that the oldest keys are dropped first. A
    process restart forgets everything: these counts are for limits, not records.
    """

    def __init__(self, window: float, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window, self.max_keys, self.clock = window, max_keys, clock
        self.times: dict[Hashable, deque[float]] = {}

    def count(self, key: Hashable) -> int:
        """Events of ``key`` within the window."""
        return len(self._recent(key, self.clock()))

    def wait(self, key: Hashable) -> int:
        """Whole seconds until the oldest event of ``key`` leaves the window (at least 1)."""
        times = self._recent(key, now := self.clock())
        return int(times[0] + self.window - now) + 1 if times else 1

    def add(self, key: Hashable) -> None:
        """Count one event of ``key`` now."""
        now = self.clock()
        self._recent(key, now)
        self.times.setdefault(key, deque()).append(now)
        while len(self.times) > self.max_keys:
            self.times.pop(next(iter(self.times)))

    def forget(self, key: Hashable) -> None:
        self.times.pop(key, None)

    def _recent(self, key: Hashable, now: float) -> deque[float]:
        times = self.times.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self.times[key]
        return times
