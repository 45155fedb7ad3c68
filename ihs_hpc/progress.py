"""Progress of a stage's tasks: a tqdm bar on a terminal, plain lines in a log.

A batch job's log is a file, not a terminal: carriage-return bars turn into one unreadable line (or,
with tqdm's default on a non-terminal, into nothing). There, progress is one line per interval
(``ihs.progress.interval_s``, default 30 s) with tasks done/total, rate and ETA, plus a first line
when the work starts and a last one when it ends.
"""
from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

import dask.config


def _clock_text(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):  # NaN or infinite: no estimate yet
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours:d}:{rest // 60:02d}:{rest % 60:02d}"


class LineProgress:
    """Progress as whole lines, at most one per ``interval`` seconds (plus the first and the last).

    ``desc: done/total unit (pct %), rate unit/s, elapsed H:MM:SS, ETA H:MM:SS``
    """

    def __init__(self, total: int, desc: str, unit: str, *, interval: float, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.total, self.desc, self.unit, self.interval = int(total), desc, unit, float(interval)
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.done = 0
        self.start = self.clock()
        self._last_line = None
        self._line(self.start)

    def update(self, n: int = 1) -> None:
        self.done += n
        now = self.clock()
        if self.done >= self.total or now - self._last_line >= self.interval:
            self._line(now)

    def close(self) -> None:
        if self._printed_done != self.done:
            self._line(self.clock())

    def _line(self, now: float) -> None:
        elapsed = now - self.start
        rate = self.done / elapsed if elapsed > 0 and self.done else float("nan")
        eta = (self.total - self.done) / rate if rate == rate and rate > 0 else float("nan")
        pct = 100.0 * self.done / self.total if self.total else 100.0
        rate_text = f"{rate:.3g} {self.unit}/s" if rate == rate else f"? {self.unit}/s"
        self.stream.write(f"{self.desc}: {self.done}/{self.total} {self.unit} ({pct:.0f} %), {rate_text}, "
                          f"elapsed {_clock_text(elapsed)}, ETA {_clock_text(eta)}\n")
        self.stream.flush()
        self._last_line, self._printed_done = now, self.done

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def progress(total: int, desc: str, unit: str = "tile", *, disable: bool | None = None,
             stream: TextIO | None = None, interval: float | None = None):
    """A progress reporter with ``update(n)`` and ``close()`` (also a context manager).

    ``disable=True``: silent. Otherwise a tqdm bar when ``stream`` (default stderr) is a terminal, and
    :class:`LineProgress` lines every ``interval`` seconds (default ``ihs.progress.interval_s``) when
    it is not, as in a batch job's log.
    """
    if disable:
        return _Silent()
    stream = stream if stream is not None else sys.stderr
    if getattr(stream, "isatty", lambda: False)():
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit, file=stream, dynamic_ncols=True)
    if interval is None:
        interval = dask.config.get("ihs.progress.interval_s", 30.0)
    return LineProgress(total, desc, unit, interval=interval, stream=stream)
