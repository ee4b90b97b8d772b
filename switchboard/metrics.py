"""Process metrics in Prometheus text format: counters, gauges and fixed-bucket histograms.

Small on purpose: recording is a few attribute updates (it runs on the media path), rendering happens only when
``GET /metrics`` is scraped. Counters and gauges may carry labels (``{"provider": "deepgram"}``); label names are
fixed by the code, values are escaped as the text format requires.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping

Labels = tuple[tuple[str, str], ...]
"""A label set, sorted by name: hashable, so it can key a counter."""


def _labels(labels: Mapping[str, str] | None) -> Labels:
    return tuple(sorted(labels.items())) if labels else ()


def _series(name: str, labels: Labels) -> str:
    if not labels:
        return name
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return f"{name}{{{body}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Histogram:
    def __init__(self, name: str, help_text: str, buckets: Iterable[float]) -> None:
        self.name, self.help = name, help_text
        self.bounds = sorted(buckets)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def quantile(self, q: float) -> float:
        """Upper bound of the bucket holding the q-quantile (inf past the last bucket)."""
        if not self.count:
            return 0.0
        rank, seen = q * self.count, 0
        for bound, n in zip([*self.bounds, float("inf")], self.counts, strict=True):
            seen += n
            if seen >= rank:
                return bound
        return float("inf")

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        total = 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            total += n
            lines.append(f'{self.name}_bucket{{le="{bound:g}"}} {total}')
        lines.append(f'{self.name}_bucket{{le="+Inf"}} {self.count}')
        lines += [f"{self.name}_sum {self.sum:.6f}", f"{self.name}_count {self.count}"]
        return lines


HANDOFF_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1.0)
"""Fine enough below 50 ms to read 1, 2, 5, 10 and 20 ms (the figures a voice agent feels)."""


class Metrics:
    """The server's metrics. Gauges are callables read at scrape time, so nothing is updated twice."""

    def __init__(self) -> None:
        self.handoff_lag = Histogram(
            "switchboard_handoff_lag_seconds",
            "Time from the media frame that completes a resampler block reaching the call session to the block being "
            "handed to the recogniser",
            HANDOFF_BUCKETS)
        self.counters: dict[str, dict[Labels, int]] = {}
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {}
        self.gauge_families: dict[str, tuple[str, Callable[[], Iterable[tuple[Mapping[str, str], float]]]]] = {}

    def inc(self, name: str, by: int = 1, labels: Mapping[str, str] | None = None) -> None:
        series = self.counters.setdefault(name, {})
        key = _labels(labels)
        series[key] = series.get(key, 0) + by

    def count(self, name: str, labels: Mapping[str, str] | None = None) -> int:
        """A counter's current value (0 if never incremented)."""
        return self.counters.get(name, {}).get(_labels(labels), 0)

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self.gauges[name] = (help_text, read)

    def gauge_family(self, name: str, help_text: str,
                     read: Callable[[], Iterable[tuple[Mapping[str, str], float]]]) -> None:
        """A gauge with one series per label set, all read at scrape time (e.g. one per provider)."""
        self.gauge_families[name] = (help_text, read)

    def render(self) -> str:
        lines = self.handoff_lag.render()
        for name, series in sorted(self.counters.items()):
            lines.append(f"# TYPE {name} counter")
            lines += [f"{_series(name, labels)} {value}" for labels, value in sorted(series.items())]
        for name, (help_text, read) in sorted(self.gauges.items()):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {read():g}"]
        for name, (help_text, read_family) in sorted(self.gauge_families.items()):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
            lines += [f"{_series(name, _labels(labels))} {value:g}" for labels, value in read_family()]
        return "\n".join(lines) + "\n"
