"""How the command prints: tables for people, one JSON document for programs, errors on stderr.

Example:
    >>> print_table([{"id": "a1", "status": "completed"}], [("id", "ID"), ("status", "STATUS")])  # doctest: +SKIP
     ID   STATUS
     a1   completed
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
from typing import Any, Iterable

__all__ = ["print_error", "print_json", "print_table", "quiet_closed_pipe", "when", "how_long"]


def print_error(message: str) -> None:
    print(f"kerasjob: {message}", file=sys.stderr)


def print_json(document: Any) -> None:
    print(json.dumps(document, default=str))


def print_table(rows: Iterable[dict[str, Any]], columns: list[tuple[str, str]], empty: str = "(none)") -> None:
    """``rows`` as a table with a header; ``columns`` are (key, heading) pairs; ``None`` shows as ``-``."""
    from rich import box
    from rich.table import Table

    rows = list(rows)
    if not rows:
        print(empty)
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for _, heading in columns:
        table.add_column(heading, no_wrap=True, overflow="ignore")
    for row in rows:
        table.add_row(*("-" if row.get(key) is None else str(row[key]) for key, _ in columns))
    # Piped into a file or another program: as wide as the table needs, no colours.
    width = None if sys.stdout.isatty() else max(shutil.get_terminal_size().columns, 400)
    _console(width).print(table)


def _console(width: int | None) -> Any:
    """rich's ``Console``, whose closed pipe ends the command as ``print``'s does (rich's own exits 1)."""
    from rich.console import Console

    class PipeConsole(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError  # main() ends quietly, exit 0

    return PipeConsole(width=width, highlight=False, soft_wrap=True)


def when(milliseconds: int | None) -> str | None:
    """A start time in the local zone, to the second."""
    if milliseconds is None:
        return None
    return dt.datetime.fromtimestamp(milliseconds / 1000).strftime("%Y-%m-%d %H:%M:%S")


def how_long(seconds: float | None) -> str | None:
    """``75.2`` -> ``1m15s``."""
    if seconds is None:
        return None
    minutes, rest = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def quiet_closed_pipe() -> None:
    """After ``kerasjob runs show ID | head`` closed our stdout: send what is left nowhere, without a traceback
    (the recipe of Python's signal documentation)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
