"""How kerasjob's results look in a notebook: a compact HTML table with a link to the run (``_repr_html_``).

Locally the link opens the run in MLflow's UI as ``kerasjob ui`` serves it (http://127.0.0.1:5000); on Azure ML
it is the run's page in the portal.

Example:
    >>> print(html_table("Run", [("status", "completed")], link="https://ml.azure.com/runs/1"))  # doctest: +ELLIPSIS
    <table ...><caption ...><b>Run</b> · <a href="https://ml.azure.com/runs/1" target="_blank">open</a></caption><tr><th ...>status</th><td ...>completed</td></tr></table>
"""

from __future__ import annotations

import html
from typing import Any, Iterable

__all__ = ["MLFLOW_UI", "browser_link", "html_table", "metric_rows"]

#: Where ``kerasjob ui`` serves MLflow's UI by default.
MLFLOW_UI = "http://127.0.0.1:5000"

_CELL = 'style="text-align:left;padding:1px 8px"'


def browser_link(url: str, mlflow_run_id: str | None) -> str | None:
    """A page a browser opens for a run: ``url`` when it is one (the Azure portal), else the run in MLflow's UI
    (``kerasjob ui``) when its MLflow run id is known."""
    if url.startswith(("http://", "https://")):
        return url
    return f"{MLFLOW_UI}/#/runs/{mlflow_run_id}" if mlflow_run_id else None


def metric_rows(metrics: dict[str, Any]) -> list[tuple[str, Any]]:
    """``{"Final test accuracy": 0.98123}`` -> ``[("Final test accuracy", "0.9812")]``, sorted by name."""
    return [(name, f"{value:.4f}" if isinstance(value, float) else value) for name, value in sorted(metrics.items())]


def html_table(title: str, rows: Iterable[tuple[str, Any]], link: str | None = None) -> str:
    """One two-column table: a caption (``title`` and the link), then a row per ``(name, value)``."""
    caption = f"<b>{html.escape(title)}</b>"
    if link:
        caption += f' · <a href="{html.escape(link, quote=True)}" target="_blank">open</a>'
    body = "".join(f"<tr><th {_CELL}>{html.escape(str(name))}</th><td {_CELL}>"
                   f"{'-' if value is None else html.escape(str(value))}</td></tr>" for name, value in rows)
    return f'<table style="border-collapse:collapse"><caption style="text-align:left">{caption}</caption>{body}</table>'
