"""How a map shows its progress: a widget bar in a notebook, one updating line in a terminal, nothing in
a script; at the end only a summary card and the first rows remain.

Every view has the same three calls (``start``, ``update``, ``finish``), so the engine never knows which
one it drives and tests can pass a :class:`RecordingProgress`.
"""

from __future__ import annotations

import html
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from .defaults import MAP_PREVIEW_ROWS


@dataclass
class MapStats:
    """Counts of one map so far; ``resumed`` rows came from the journal, unsent."""

    total: int = 0
    done: int = 0
    failed: int = 0
    resumed: int = 0
    cost: float = 0.0
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    interrupted: bool = False
    note: str = ""

    @property
    def elapsed(self) -> float:
        return (self.ended if self.ended is not None else time.monotonic()) - self.started

    @property
    def sent_done(self) -> int:
        """Rows finished by this run's requests (resumed rows excluded), the base of the rate."""
        return self.done + self.failed - self.resumed

    @property
    def rate(self) -> float:
        """Rows per second answered by this run."""
        return self.sent_done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        left = self.total - self.done - self.failed
        return left / self.rate if self.rate > 0 else None

    @property
    def not_run(self) -> int:
        return self.total - self.done - self.failed

    def snapshot(self) -> MapStats:
        return replace(self)

    def line(self) -> str:
        """One line of text: the terminal view, and the widget's label."""
        eta = f", ETA {self.eta:.0f} s" if self.eta is not None and self.ended is None else ""
        failed = f", {self.failed} failed" if self.failed else ""
        return (f"{self.done + self.failed}/{self.total} rows{failed}, {self.rate:.1f} rows/s, "
                f"${self.cost:.4f}{eta}")

    def summary(self) -> str:
        """The final one-line summary."""
        parts = [f"{self.done} ok", f"{self.failed} failed"]
        if self.not_run:
            parts.append(f"{self.not_run} not run")
        if self.resumed:
            parts.append(f"{self.resumed} from the journal")
        stopped = "interrupted: " if self.interrupted else ""
        return (f"{stopped}{', '.join(parts)} of {self.total} rows; ${self.cost:.4f}; "
                f"{self.elapsed:.1f} s; {self.rate:.1f} rows/s")


class Progress(Protocol):
    def start(self, stats: MapStats) -> None: ...
    def update(self, stats: MapStats) -> None: ...
    def finish(self, stats: MapStats, frame: Any) -> None: ...


class NullProgress:
    """Shows nothing (scripts, tests)."""

    def start(self, stats: MapStats) -> None:
        pass

    def update(self, stats: MapStats) -> None:
        pass

    def finish(self, stats: MapStats, frame: Any) -> None:
        pass


class RecordingProgress:
    """Keeps every call, for tests: ``events`` is a list of (name, stats snapshot)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, MapStats]] = []
        self.frame: Any = None

    def start(self, stats: MapStats) -> None:
        self.events.append(("start", stats.snapshot()))

    def update(self, stats: MapStats) -> None:
        self.events.append(("update", stats.snapshot()))

    def finish(self, stats: MapStats, frame: Any) -> None:
        self.events.append(("finish", stats.snapshot()))
        self.frame = frame


class TerminalProgress:
    """One line rewritten in place (carriage return), then the summary on its own line."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stdout
        self._width = 0

    def _write(self, text: str) -> None:
        pad = " " * max(0, self._width - len(text))
        self.stream.write(f"\r{text}{pad}")
        self.stream.flush()
        self._width = len(text)

    def start(self, stats: MapStats) -> None:
        self._write(stats.line())

    def update(self, stats: MapStats) -> None:
        self._write(stats.line())

    def finish(self, stats: MapStats, frame: Any) -> None:
        self._write(stats.summary())
        self.stream.write("\n")
        self.stream.flush()


class WidgetProgress:
    """An ipywidgets bar with a text line; replaced at the end by the summary card and the first rows."""

    def __init__(self) -> None:
        import ipywidgets as w

        self.bar = w.IntProgress(value=0, min=0, max=1, description="map", bar_style="info")
        self.label = w.Label(value="")
        self.box = w.HBox([self.bar, self.label])
        self.handle: Any = None

    def start(self, stats: MapStats) -> None:
        from IPython.display import display

        self.bar.max = max(stats.total, 1)
        self.update(stats)
        self.handle = display(self.box, display_id=True)

    def update(self, stats: MapStats) -> None:
        self.bar.value = stats.done + stats.failed
        self.bar.bar_style = "warning" if stats.failed else "info"
        self.label.value = stats.line()

    def finish(self, stats: MapStats, frame: Any) -> None:
        card = {"text/html": summary_html(stats, frame), "text/plain": f"map: {stats.summary()}"}
        if self.handle is not None:
            self.handle.update(card, raw=True)
        self.box.close()
        self.bar.close()
        self.label.close()


def summary_html(stats: MapStats, frame: Any = None, rows: int = MAP_PREVIEW_ROWS) -> str:
    """The summary card: counts, cost, time and rate, then the first rows (every value escaped)."""
    text = html.escape(stats.summary())
    table = ""
    if frame is not None:
        try:
            table = frame.head(rows).to_html(escape=True, border=0, na_rep="")
        except Exception:  # a frame that cannot render must not hide the summary
            table = ""
    return f'<div class="or-magic-map"><p><b>map</b> {text}</p>{table}</div>'


def auto_progress() -> Progress:
    """The widget in a notebook kernel, a line in terminal IPython, nothing elsewhere."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return NullProgress()
    shell = get_ipython()
    if shell is None:
        return NullProgress()
    if getattr(shell, "kernel", None) is not None:
        try:
            return WidgetProgress()
        except ImportError:  # pragma: no cover - ipywidgets is a dependency
            return TerminalProgress()
    return TerminalProgress()
