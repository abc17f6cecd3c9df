"""``kerasjob runs delete|download|compare`` and ``kerasjob models delete``: what MLflow and az ml users reach for.

Example:
    $ kerasjob runs compare RUN_A RUN_B
    $ kerasjob runs download RUN_ID ./run-files
    $ kerasjob runs delete RUN_ID
    $ kerasjob models delete keras-mnist:3
"""

from __future__ import annotations

import argparse
from typing import Any

from .browse import _attach, _backend
from .output import print_json, print_table

__all__ = ["compare_runs", "delete_model_version", "delete_run", "download_run"]


def download_run(args: argparse.Namespace) -> int:
    """A run's ``outputs/`` into ``DEST/outputs``, on any backend (``JobRun.download_outputs``)."""
    from ..azure_errors import azure_access

    run = _attach(args)
    with azure_access():
        folder = run.download_outputs(args.destination)
    print(f"Downloaded run {run.id}'s outputs to {folder}")
    return 0


def _final(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "-" if value is None else str(value)


def compare_runs(args: argparse.Namespace) -> int:
    """Parameters and final metrics of two or more runs side by side; a row whose values differ is marked."""
    from ..azure_errors import azure_access
    from ..errors import ValidationError

    if len(set(args.run_ids)) < 2:
        raise ValidationError("run_ids", "two or more different run ids", " ".join(args.run_ids))
    backend = _backend(args)
    with azure_access():
        described = [backend.describe_run(run_id) for run_id in args.run_ids]
    if args.output == "json":
        print_json(described)
        return 0
    rows: list[dict[str, Any]] = [{"what": "status", **{str(i): run.get("status") for i, run in enumerate(described)}}]
    for section in ("params", "metrics"):
        names = sorted({name for run in described for name in (run.get(section) or {})})
        for name in names:
            values = [_final((run.get(section) or {}).get(name)) for run in described]
            rows.append({"what": f"{'*' if len(set(values)) > 1 else ' '} {name}",
                         **{str(i): value for i, value in enumerate(values)}})
    print_table(rows, [("what", "")] + [(str(i), run["run_id"][:12]) for i, run in enumerate(described)])
    print("* differs")
    return 0


def delete_run(args: argparse.Namespace) -> int:
    """A local run gone: its MLflow run and its folder. A run still going, or whose model is registered, stays."""
    from ..backends.local.deletion import delete_local_run

    print(f"Run {delete_local_run(args.run_id)} deleted.")
    return 0


def delete_model_version(args: argparse.Namespace) -> int:
    """``NAME:VERSION`` removed from the local registry; the champion alias moves to the best version left."""
    from ..backends.local.deletion import delete_model_version as delete

    deleted = delete(args.model)
    champion = "" if not deleted.was_champion else (
        f" @champion -> version {deleted.champion.version}." if deleted.champion is not None
        else " No version left holds @champion.")
    print(f"Model {deleted.version.name!r} version {deleted.version.version} deleted.{champion}")
    return 0
