"""How long the CLI takes to refuse when Azure says no, in kerasjob's own time.

    python benchmarks/azure_refusals.py [--repeats 5]

For each SDK (v1, v2) and each refusal (not logged in, no workspace, 403, a
malformed config.json), ``kerasjob.cli.main`` runs in this process against the
fake Azure ML of ``kerasjob.testing``, so no network is involved: what is timed
is kerasjob's work plus the SDK code that runs above the fake transport. The SDKs
are imported once before timing (an import is the SDK's cost, paid once per
process; the first row says how long it took). Reported: the exit code and the
median of ``--repeats`` calls. The target is under 1 s each.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

CASES = ("not-logged-in", "no-workspace", "forbidden", "malformed-config")


def refuse_once(backend: str, case: str, folder: Path) -> tuple[int, float]:
    from kerasjob.cli import main
    from kerasjob.testing import FakeAzureML, FakeMLClient

    config = folder / "config.json"
    config.write_text("{not json" if case == "malformed-config" else json.dumps(
        {"subscription_id": "00000000-0000-0000-0000-000000000000", "resource_group": "rg", "workspace_name": "ws"}))
    fake = {"azureml": FakeAzureML, "azureml-v2": FakeMLClient}[backend]
    access = "ok" if case == "malformed-config" else case
    with fake(access=access), contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        started = time.perf_counter()
        code = main(["submit", "--backend", backend, "--workspace-config", str(config), "--quiet"])
        return code, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    started = time.perf_counter()
    import azure.ai.ml  # noqa: F401
    import azureml.core  # noqa: F401
    import mlflow  # noqa: F401
    print(f"SDK imports (once per process, not timed below): {time.perf_counter() - started:.2f} s\n")
    print(f"{'backend':<11} {'refusal':<17} {'exit':>4} {'median s':>9} {'max s':>7}")
    with tempfile.TemporaryDirectory() as folder:
        for backend in ("azureml", "azureml-v2"):
            for case in CASES:
                runs = [refuse_once(backend, case, Path(folder)) for _ in range(args.repeats)]
                seconds = [elapsed for _, elapsed in runs]
                codes = {code for code, _ in runs}
                print(f"{backend:<11} {case:<17} {'/'.join(map(str, sorted(codes))):>4} "
                      f"{statistics.median(seconds):>9.3f} {max(seconds):>7.3f}")


if __name__ == "__main__":
    main()
