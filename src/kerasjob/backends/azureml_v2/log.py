"""What ``jobs.stream`` prints or raises (SDK v2), turned into the job's own log lines and failure reason.

``azure-ai-ml`` streams a job's output by printing it, banner included; a
``LineWriter`` put in place of stdout hands each complete line to a ``JobLog``,
which drops the banner and, on a retried stream, the lines already delivered.

Example:
    >>> seen = []
    >>> log = JobLog(seen.append)
    >>> for line in ["RunId: x", "Web View: y", "", "Streaming azureml-logs/std_log.txt", "=====", "Epoch 1/2"]:
    ...     log(line)
    >>> seen
    ['Epoch 1/2']
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from typing import TextIO

from ..base import LineSink

__all__ = ["JobLog", "LineWriter", "service_error"]


class LineWriter(io.TextIOBase):
    """A stdout stand-in that hands complete lines to ``sink``, with the real stdout back in place meanwhile
    (so a sink that prints does not write into itself)."""

    def __init__(self, sink: LineSink, real_stdout: TextIO) -> None:
        self.sink, self.real_stdout, self.pending = sink, real_stdout, ""

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            with contextlib.redirect_stdout(self.real_stdout):
                self.sink(line)
        return len(text)

    def close(self) -> None:
        if self.pending:
            line, self.pending = self.pending, ""
            with contextlib.redirect_stdout(self.real_stdout):
                self.sink(line)
        super().close()


class JobLog:
    """Turns what ``stream_logs_until_completion`` prints into the job's own log lines.

    Drops the SDK's banner (``RunId:``, ``Web View:``, ``Streaming <file>`` and its
    underline, blank spacing, everything from ``Execution Summary`` on) and, since
    a retried stream prints the log again from its start, lines already delivered.
    """

    def __init__(self, sink: LineSink) -> None:
        self.sink, self.delivered, self.seen, self.summary, self.underline = sink, 0, 0, False, False

    def restart(self) -> None:
        self.seen, self.summary, self.underline = 0, False, False

    def __call__(self, line: str) -> None:
        if self.summary or line == "Execution Summary":
            self.summary = True
            return
        if self.underline and re.fullmatch(r"=+", line):
            self.underline = False
            return
        self.underline = bool(re.fullmatch(r"Streaming \S+", line))
        if self.underline or not line.strip() or line.startswith(("RunId: ", "Web View: ")):
            return
        self.seen += 1
        if self.seen > self.delivered:
            self.delivered += 1
            self.sink(line)


def service_error(error: BaseException) -> str:
    """The service's error message from the ``JobException`` ``jobs.stream`` raises for a failed job."""
    text = str(getattr(error, "message", "") or error)
    start = text.find("{")
    try:
        details = json.loads(text[start:text.rfind("}") + 1]) if start >= 0 else None
    except ValueError:
        details = None
    if isinstance(details, dict):
        inner = details.get("error", details)
        return str(inner.get("message") or inner.get("code") or text.strip())
    return text.strip()
