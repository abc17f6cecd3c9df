"""How long the command takes to refuse bad input: each row of tests/test_cli_bad_inputs.py as its own
``kerasjob`` process, as a user meets it (Python's start and kerasjob's imports included).

    python benchmarks/cli_refusals.py [--repeats 3]

Prints each row's median wall time and exit code, then the slowest; the target is under 1 s each.
The row that needs a fake Azure (``not-logged-in``) runs in-process in the tests and is skipped here.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_cli_bad_inputs import CASES  # noqa: E402 - the table lives with its test

NEEDS_A_FAKE = {"not-logged-in"}


def _environment(case: str, folder: Path) -> dict[str, str]:
    env = {**os.environ, "KERASJOB_HOME": str(folder / "home"), "KERASJOB_CACHE_DIR": str(folder / "cache"),
           "KERASJOB_MNIST_MIRRORS": "http://127.0.0.1:9/"}
    if case == "home-not-writable":
        blocker = folder / "a-file"
        blocker.write_text("")
        env["KERASJOB_HOME"] = str(blocker / "home")
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    repeats = parser.parse_args().repeats
    slowest = (0.0, "")
    print(f"{'case':<44} {'exit':>4} {'median s':>9}")
    for case, build, _ in CASES:
        if case in NEEDS_A_FAKE:
            continue
        times, code = [], None
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as scratch:
                folder = Path(scratch)
                argv = build(folder)
                started = time.perf_counter()
                completed = subprocess.run([sys.executable, "-m", "kerasjob.cli", *argv], cwd=folder,
                                           env=_environment(case, folder), capture_output=True)
                times.append(time.perf_counter() - started)
                code = completed.returncode
        median = statistics.median(times)
        slowest = max(slowest, (median, case))
        print(f"{case:<44} {code:>4} {median:>9.2f}")
    print(f"\nslowest: {slowest[1]} at {slowest[0]:.2f} s (target < 1 s)")


if __name__ == "__main__":
    main()
