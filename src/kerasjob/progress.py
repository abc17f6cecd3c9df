"""A run's or a sweep's live progress in a Jupyter notebook: one display that updates in place.

In a terminal ``submit_training`` and ``tune_training`` print the log as it comes. In a notebook a run of 20
epochs printed hundreds of lines into the cell; there ``live_progress`` shows instead one display, updated in
place through IPython's display handles (``display(..., display_id=True)`` and ``handle.update``): the epoch
reached (a progress bar), the metrics so far (one row per epoch), the time the epochs took and about how long
the rest will take, a sweep's trials (state, epochs, last primary metric), and the log itself folded in a
``<details>`` element, opened with a click. What the call prints while it waits (the run's log, HyperDrive's
and Azure ML's own output) is read line by line from ``sys.stdout``; the run's full log stays with the run.

tqdm's and rich's notebook displays need ``ipywidgets`` (not installed with Jupyter: without it tqdm.auto warns
"IProgress not found"), and a widget's state is not saved with the notebook; this is plain HTML, so an executed
notebook keeps its last state. ``import kerasjob`` stays light: IPython is imported only inside a notebook.

Example:
    >>> with live_progress("Run 1", display=lambda view, display_id: None) as progress:  # a notebook's display
    ...     print("Epoch 1/2 - 4.1s - Loss 0.3000 - Accuracy 0.9100")
    >>> progress.epoch, progress.epochs, progress.rows[0]["Accuracy"]
    (1, 2, 0.91)
"""

from __future__ import annotations

import contextlib
import html
import io
import re
import sys
import threading
import time
from typing import Any, Callable, Iterator

__all__ = ["LiveProgress", "in_notebook", "live_progress"]

#: A trainer's epoch line (keras_mnist.py, keras_fit.py): ``Epoch 3/20 - 4.6s - Loss 0.1234 - Accuracy 0.9600``.
_EPOCH = re.compile(r"^(?:\[worker \d+\] )?Epoch (?P<epoch>\d+)/(?P<epochs>\d+) - (?P<seconds>\d+(?:\.\d+)?)s"
                    r"(?P<rest>(?: - .*)?)$")
_METRIC = re.compile(r"^(?P<name>.+?) (?P<value>[-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|nan|inf))$")
#: A sweep's trial lines (tuning.local): ``trial 2 started: ...``, ``trial 2 epoch 3: Accuracy=0.9512``,
#: ``trial 2 completed Accuracy=0.9612``.
_TRIAL_EPOCH = re.compile(r"^trial (?P<trial>\d+) epoch (?P<epoch>\d+): (?P<name>[^=]+)=(?P<value>\S+)$")
_TRIAL_STATE = re.compile(r"^trial (?P<trial>\d+) (?P<state>started|completed|failed|canceled|early-terminated)\b")

Display = Callable[..., Any]


def in_notebook() -> bool:
    """True inside a Jupyter kernel (an IPython shell with a kernel); imports nothing."""
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if callable(get_ipython) else None
    return shell is not None and hasattr(shell, "kernel")


class _View:
    """One state of the display: HTML for the notebook, text for anything that reads text/plain."""

    def __init__(self, markup: str, text: str) -> None:
        self.markup, self.text = markup, text

    def _repr_html_(self) -> str:
        return self.markup

    def __repr__(self) -> str:
        return self.text


class LiveProgress:
    """The state ``live_progress`` shows, fed one printed line at a time (``line``), shown through ``display``
    (IPython's ``display``; tests pass their own): at most every ``interval`` seconds, at each epoch or trial
    line, and once more at ``close``."""

    def __init__(self, title: str, display: Display | None = None, *, interval: float = 0.5, log_lines: int = 400,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if display is None:
            from IPython.display import display as ipython_display

            display = ipython_display
        self.title, self.interval, self.log_lines, self.clock = title, interval, log_lines, clock
        self.epoch, self.epochs = 0, 0
        self.seconds: list[float] = []
        self.rows: list[dict[str, float]] = []
        self.trials: dict[int, dict[str, Any]] = {}
        self.log: list[str] = []
        self.lines_seen = 0
        self.outcome = "running"
        self.started = clock()
        self._shown_at = float("-inf")
        self._lock = threading.Lock()
        self._handle = display(self.view(), display_id=True)

    def line(self, text: str) -> None:
        """Take one printed line: kept for the log, read for an epoch's or a trial's progress."""
        with self._lock:
            self.lines_seen += 1
            self.log.append(text)
            del self.log[:-self.log_lines]
            if self._read(text.strip()) or self.clock() - self._shown_at >= self.interval:
                self._show()

    def close(self, outcome: str) -> None:
        """The last update: ``outcome`` is ``done``, ``failed`` or ``interrupted``."""
        with self._lock:
            self.outcome = outcome
            self._show()

    def _read(self, text: str) -> bool:
        epoch = _EPOCH.match(text)
        if epoch is not None:
            self.epoch, self.epochs = int(epoch["epoch"]), int(epoch["epochs"])
            self.seconds.append(float(epoch["seconds"]))
            metrics = {}
            for part in epoch["rest"].split(" - ")[1:]:
                metric = _METRIC.match(part.strip())
                if metric is not None:
                    metrics[metric["name"]] = float(metric["value"])
            self.rows.append(metrics)
            return True
        trial = _TRIAL_EPOCH.match(text)
        if trial is not None:
            entry = self.trials.setdefault(int(trial["trial"]), {"state": "running"})
            entry.update(epochs=int(trial["epoch"]), metric=trial["name"], value=trial["value"])
            return True
        state = _TRIAL_STATE.match(text)
        if state is not None:
            entry = self.trials.setdefault(int(state["trial"]), {})
            entry["state"] = "running" if state["state"] == "started" else state["state"]
            return True
        return False

    def time_left(self) -> float | None:
        """Seconds the remaining epochs should take at the pace of those done; None before the first."""
        if not self.seconds or not self.epochs:
            return None
        return sum(self.seconds) / len(self.seconds) * max(self.epochs - self.epoch, 0)

    def _show(self) -> None:
        self._shown_at = self.clock()
        if self._handle is not None:
            self._handle.update(self.view())

    def _status(self) -> str:
        elapsed = self.clock() - self.started
        parts = [f"{self.outcome}, {elapsed:.0f} s"]
        if self.epochs:
            parts.append(f"epoch {self.epoch}/{self.epochs}")
            left = self.time_left()
            if self.outcome == "running" and left is not None:
                parts.append(f"about {left:.0f} s left")
        if self.trials:
            ended = sum(1 for entry in self.trials.values() if entry.get("state") not in (None, "running"))
            parts.append(f"{len(self.trials)} trials, {ended} ended")
        return " · ".join(parts)

    def view(self) -> _View:
        """The display as it stands."""
        cell = 'style="text-align:right;padding:1px 8px"'
        parts = [f"<div><b>{html.escape(self.title)}</b> · {html.escape(self._status())}</div>"]
        if self.epochs:
            parts.append(f'<progress value="{self.epoch}" max="{self.epochs}" style="width:24em"></progress>')
        if self.rows:
            names = list(dict.fromkeys(name for row in self.rows for name in row))
            head = "".join(f"<th {cell}>{html.escape(name)}</th>" for name in ["epoch", "seconds", *names])
            body = "".join(
                f"<tr><td {cell}>{number}</td><td {cell}>{seconds:.1f}</td>"
                + "".join(f"<td {cell}>{row[name]:.4f}</td>" if name in row else f"<td {cell}>-</td>"
                          for name in names) + "</tr>"
                for number, (seconds, row) in enumerate(zip(self.seconds, self.rows), start=1))
            parts.append(f'<table style="border-collapse:collapse"><tr>{head}</tr>{body}</table>')
        if self.trials:
            head = "".join(f"<th {cell}>{name}</th>" for name in ("trial", "state", "epochs", "metric"))
            body = "".join(
                f"<tr><td {cell}>{number}</td><td {cell}>{html.escape(str(entry.get('state', '-')))}</td>"
                f"<td {cell}>{entry.get('epochs', '-')}</td><td {cell}>{html.escape(_trial_metric(entry))}</td>"
                f"</tr>" for number, entry in sorted(self.trials.items()))
            parts.append(f'<table style="border-collapse:collapse"><tr>{head}</tr>{body}</table>')
        if self.log:
            hidden = self.lines_seen - len(self.log)
            summary = f"Log ({self.lines_seen} lines" + (f", the last {len(self.log)} here" if hidden else "") + ")"
            parts.append(f"<details><summary>{summary}</summary><pre style=\"max-height:24em;overflow:auto\">"
                         f"{html.escape(chr(10).join(self.log))}</pre></details>")
        text = f"{self.title} · {self._status()}"
        if self.rows:
            text += " · " + ", ".join(f"{name} {value:.4f}" for name, value in self.rows[-1].items())
        return _View("".join(parts), text)


def _trial_metric(entry: dict[str, Any]) -> str:
    return f"{entry['metric']}={entry['value']}" if "metric" in entry else "-"


class _LineReader(io.TextIOBase):
    """A text stream that hands each whole line written to it to ``sink`` (``sys.stdout`` while waiting)."""

    def __init__(self, sink: Callable[[str], None]) -> None:
        super().__init__()
        self._sink = sink
        self._partial = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            *lines, self._partial = (self._partial + text).split("\n")
        for each in lines:
            self._sink(each.rstrip("\r"))
        return len(text)

    def flush(self) -> None:
        """Nothing is buffered but a line not yet ended, which waits for its end (or ``close``)."""

    def close(self) -> None:
        with self._lock:
            rest, self._partial = self._partial, ""
        if rest:
            self._sink(rest)
        super().close()


@contextlib.contextmanager
def live_progress(title: str, enabled: bool = True, display: Display | None = None
                  ) -> Iterator[LiveProgress | None]:
    """Inside a notebook (or with ``display`` given), what is printed to ``sys.stdout`` inside the block feeds
    a ``LiveProgress`` display instead of the cell's output; elsewhere, or with ``enabled`` False, nothing
    changes (``None`` is yielded). The display's last state says how the block ended."""
    if not enabled or (display is None and not in_notebook()):
        yield None
        return
    progress = LiveProgress(title, display)
    reader = _LineReader(progress.line)
    outcome = "failed"
    try:
        with contextlib.redirect_stdout(reader):
            yield progress
        outcome = "done"
    except KeyboardInterrupt:
        outcome = "interrupted"
        raise
    finally:
        reader.close()
        progress.close(outcome)
