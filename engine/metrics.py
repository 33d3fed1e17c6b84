"""Counters and histograms of one process, rendered in the Prometheus text format.

The engine counts what it does (rule firings, SLA sweeps, jobs); the web layer
counts requests and their latencies and serves everything at ``/metrics``. Values
live in this process only: Prometheus scrapes every server and worker and adds
them up. Label values are given by the code, never taken from a request as is.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Sequence

LabelValues = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    pairs = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class Counter:
    """A count that only goes up, per combination of label values."""

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)
        self._values: dict[LabelValues, float] = {}
        self._lock = threading.Lock()

    def inc(self, *values: str, by: float = 1.0) -> None:
        with self._lock:
            self._values[values] = self._values.get(values, 0.0) + by

    def value(self, *values: str) -> float:
        return self._values.get(values, 0.0)

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} counter"
        for values, count in sorted(self._values.items()):
            yield f"{self.name}{_labels(self.label_names, values)} {_number(count)}"


class Histogram:
    """Observations counted into cumulative buckets (seconds, by default), per label values."""

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = (),
                 buckets: Sequence[float] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)
        self.buckets = tuple(sorted(buckets))
        self._series: dict[LabelValues, tuple[list[int], list[float]]] = {}
        self._lock = threading.Lock()

    def observe(self, amount: float, *values: str) -> None:
        with self._lock:
            counts, total = self._series.setdefault(values, ([0] * (len(self.buckets) + 1), [0.0]))
            counts[bisect.bisect_left(self.buckets, amount)] += 1
            total[0] += amount

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        for values, (counts, total) in sorted(self._series.items()):
            running = 0
            for bound, count in zip((*self.buckets, float("inf")), counts, strict=True):
                running += count
                le = "+Inf" if bound == float("inf") else _number(bound)
                series = _labels(self.label_names, values, 'le="' + le + '"')
                yield f"{self.name}_bucket{series} {running}"
            yield f"{self.name}_sum{_labels(self.label_names, values)} {_number(total[0])}"
            yield f"{self.name}_count{_labels(self.label_names, values)} {running}"


def gauge(name: str, help_text: str, samples: Iterable[tuple[dict[str, str], float]]) -> list[str]:
    """Lines of a gauge whose values were just measured (e.g. queue depths read from the database)."""
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    for labels, value in samples:
        lines.append(f"{name}{_labels(tuple(labels), tuple(labels.values()))} {_number(value)}")
    return lines


REQUESTS = Counter("routecard_http_requests_total", "HTTP requests answered, by method, route and status.",
                   ("method", "route", "status"))
LATENCY = Histogram("routecard_http_request_duration_seconds", "Time to answer HTTP requests, by method and route.",
                    ("method", "route"))
RULE_FIRINGS = Counter("routecard_rule_firings_total", "Automation rules fired, by rule and outcome.",
                       ("rule", "outcome"))
SLA_SWEEPS = Counter("routecard_sla_sweeps_total", "SLA sweeps run by workers.")
SLA_ESCALATIONS = Counter("routecard_sla_escalations_total", "SLA warnings and breaches fired, by level.", ("level",))
JOBS = Counter("routecard_jobs_total", "Scheduled jobs run by workers, by kind and outcome.", ("kind", "outcome"))
MAILS = Counter("routecard_outbox_deliveries_total", "Outbox deliveries attempted, by outcome.", ("outcome",))

REGISTRY: tuple[Counter | Histogram, ...] = (REQUESTS, LATENCY, RULE_FIRINGS, SLA_SWEEPS, SLA_ESCALATIONS, JOBS, MAILS)
"""Every metric of the process, in the order ``/metrics`` shows them."""


def render(extra: Sequence[str] = ()) -> str:
    """The process's metrics and ``extra`` lines (gauges measured now) as one Prometheus text page."""
    lines: list[str] = []
    for metric in REGISTRY:
        lines.extend(metric.render())
    lines.extend(extra)
    return "\n".join(lines) + "\n"
