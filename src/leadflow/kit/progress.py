"""Progress of long command-line work (key rotation, backfills, rescoring).

On a terminal a ``tqdm`` bar on stderr; otherwise (a log file, a pipe, a CI job) plain lines
such as ``re-encrypting accounts 5000/12000``, at most one every ``every`` seconds plus the
last one, so that a log keeps a readable trace without one line per row.
"""

from __future__ import annotations

import os
import sys
import time
from types import TracebackType
from typing import IO, Any, Protocol

DEFAULT_COLUMNS = 80
DEFAULT_ROWS = 24


class _Bar(Protocol):
    total: float | None
    n: float

    def update(self, n: float = 1) -> bool | None: ...
    def refresh(self) -> None: ...
    def close(self) -> None: ...


class Progress:
    """A count of ``total`` units of work done (``total`` may be unknown, or grow).

    ``update(done)`` sets the count, ``advance(n)`` adds to it; ``close()`` (or leaving the
    ``with`` block) prints the last state. Writes to ``stream`` (stderr by default), so the
    command's own output on stdout stays machine-readable."""

    def __init__(
        self,
        label: str,
        total: int | None = None,
        *,
        unit: str = "",
        stream: IO[str] | None = None,
        every: float = 2.0,
        bar: bool | None = None,
    ) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.every = every
        self._printed: int | None = None
        self._last_print = time.monotonic()
        self._closed = False
        use_bar = _is_terminal(self.stream) if bar is None else bar
        self._bar: _Bar | None = self._make_bar() if use_bar else None

    def _make_bar(self) -> _Bar:
        from tqdm import tqdm

        # A terminal that reports no size (a bare pseudo-terminal) would get an empty bar.
        sized = _columns(self.stream) > 0
        bar: _Bar = tqdm(
            total=self.total,
            desc=self.label,
            unit=f" {self.unit}" if self.unit else "it",
            file=self.stream,
            dynamic_ncols=sized,
            ncols=None if sized else DEFAULT_COLUMNS,
            nrows=None if sized else DEFAULT_ROWS,
            leave=True,
        )
        return bar

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def set_total(self, total: int | None) -> None:
        self.total = total
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def advance(self, n: int = 1) -> None:
        self.update(self.done + n)

    def update(self, done: int) -> None:
        """The count is now ``done`` (a total it passes grows with it)."""
        if self.total is not None and done > self.total:
            self.set_total(done)
        step, self.done = done - self.done, done
        if self._bar is not None:
            if step:
                self._bar.update(step)
            return
        now = time.monotonic()
        if now - self._last_print >= self.every and done != self._printed:
            self._print()
            self._last_print = now

    def line(self) -> str:
        """The state as one plain line."""
        counted = f"{self.done}" if self.total is None else f"{self.done}/{self.total}"
        return f"{self.label} {counted}{' ' + self.unit if self.unit else ''}"

    def _print(self) -> None:
        print(self.line(), file=self.stream, flush=True)
        self._printed = self.done

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self._printed != self.done or self._printed is None:
            self._print()


def _columns(stream: Any) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except ValueError:  # a closed stream
        return False
