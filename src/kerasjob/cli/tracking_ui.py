"""``kerasjob ui``: MLflow's UI on kerasjob's own store, with the right URI, in one command.

Example:
    $ kerasjob ui                  # http://127.0.0.1:5000, Ctrl-C stops it
    $ kerasjob ui --port 5001
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from ..errors import ValidationError

__all__ = ["ui", "ui_command"]


def ui_command(host: str, port: int) -> list[str]:
    """The ``mlflow ui`` command line for kerasjob's store (the one ``kerasjob runs list`` reads), with this
    Python's MLflow."""
    from ..backends.local import tracking

    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValidationError("port", "a TCP port from 1 to 65535", port)
    if not host or any(character.isspace() for character in host):
        raise ValidationError("host", "a host name or address to listen on, such as 127.0.0.1", host)
    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tracking.tracking_uri(),
            "--host", host, "--port", str(port), "--workers", "1"]


def ui(args: argparse.Namespace) -> int:
    from ..backends.local import tracking
    from ..optional import TRAIN

    command = ui_command(args.host, args.port)
    TRAIN.require()  # MLflow comes with the train extra
    tracking.ensure_store_writable(tracking.tracking_uri())
    print(f"MLflow's UI on {tracking.tracking_uri()}: http://{args.host}:{args.port} (Ctrl-C stops it)",
          file=sys.stderr, flush=True)
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0  # the user stopped it: that is how it ends
