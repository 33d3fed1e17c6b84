"""The sliding window that the sign-in, form-post and mail-test limits count with."""

from __future__ import annotations

from engine.window import SlidingWindow


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_events_leave_the_window_and_the_wait_says_when() -> None:
    clock = Clock()
    window = SlidingWindow(60.0, clock=clock)
    window.add("a")
    clock.now += 30
    window.add("a")
    assert window.count("a") == 2 and window.wait("a") == 31 and window.count("b") == 0
    clock.now += 30  # the first event is exactly one window old: gone
    assert window.count("a") == 1 and window.wait("a") == 31
    clock.now += 31
    assert window.count("a") == 0 and window.wait("a") == 1 and "a" not in window.times


def test_forget_and_the_oldest_keys_dropped_beyond_the_maximum() -> None:
    clock = Clock()
    window = SlidingWindow(60.0, max_keys=2, clock=clock)
    for key in ("a", "b", "c"):
        window.add(key)
    assert window.count("a") == 0 and window.count("b") == 1 and window.count("c") == 1
    window.forget("b")
    assert window.count("b") == 0
