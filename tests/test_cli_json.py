"""Every ``--json`` command, run as a user runs it (a child process, its real stdout): stdout is one JSON document
that ``json.loads`` reads, and stderr holds no line of TensorFlow's, CUDA's or absl's start-up chatter.

One store for the module: one trained run (tiny IDX files, 1 epoch) serves every command that needs a model."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kerasjob.quiet import is_framework_noise

from mnist_files import make_tiny_mnist

FAST = ["--epochs", "1", "--first-layer-neurons", "16", "--second-layer-neurons", "8"]
SRC = str(Path(__file__).resolve().parents[1] / "src")
#: What only TensorFlow's, CUDA's and absl's loggers write (the run's own lines never hold these).
FOREIGN = ("absl::InitializeLog", "cuda", "cuInit", "oneDNN", "cpu_feature_guard", "TF_ENABLE_ONEDNN_OPTS")


class Cli:
    """``kerasjob ARGS`` in a child process, against one kerasjob home."""

    def __init__(self, home: Path, cwd: Path) -> None:
        self.cwd = cwd
        self.env = {**os.environ, "KERASJOB_HOME": str(home), "KERASJOB_CACHE_DIR": str(home.parent / "cache"),
                    "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.env.pop("MLFLOW_TRACKING_URI", None)
        self.env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # kerasjob's own quieting, not the tester's

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "kerasjob.cli", *args], capture_output=True, text=True,
                              env=self.env, cwd=self.cwd, timeout=300)

    def json(self, *args: str, code: int = 0) -> Any:
        done = self.run(*args)
        assert done.returncode == code, done.stderr
        assert len(done.stdout.strip().splitlines()) == 1, f"one line of JSON, got: {done.stdout[:400]!r}"
        assert "\x1b" not in done.stdout  # no progress bar, no colour
        noise = [line for line in done.stderr.splitlines() if any(word in line for word in FOREIGN)]
        assert noise == [], f"kerasjob {' '.join(args)}: framework noise on stderr"
        return json.loads(done.stdout)


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> Cli:
    root = tmp_path_factory.mktemp("cli-json")
    return Cli(root / "home", root)


@pytest.fixture(scope="module")
def data(cli) -> Path:
    return make_tiny_mnist(cli.cwd / "tiny-mnist")


@pytest.fixture(scope="module")
def trained(cli, data) -> dict[str, Any]:
    """``kerasjob submit --json``: its stdout is the result; its stderr the run's log, with no framework noise."""
    document = cli.json("submit", "--data-folder", str(data), *FAST, "--json")
    assert document["status"] == "completed" and document["model"]["version"] == "1"
    return document


@pytest.mark.slow
def test_submit_and_the_commands_that_read_runs_and_models_print_one_json_document(cli, data, trained):
    assert cli.json("submit", "--data-folder", str(data), *FAST, "--dry-run", "--json")["backend"] == "local"
    assert cli.json("tune", "--data-folder", str(data), "--epochs", "1", "--max-total-runs", "2",
                    "--max-concurrent-runs", "1", "--dry-run", "--json")["trials"] == 2
    assert trained["run_id"] in [run["run_id"] for run in cli.json("runs", "list", "--json")]
    shown = cli.json("runs", "show", trained["run_id"], "--json")
    assert shown["status"] == "completed" and isinstance(shown["start_time"], int)  # JSON keeps MLflow's ms
    readable = cli.run("runs", "show", trained["run_id"]).stdout
    assert re.search(r"^start_time: +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", readable, re.M), readable
    assert cli.json("models", "list", "--json")[0]["name"] == "keras-mnist"
    assert cli.json("models", "show", "keras-mnist", "--json")["versions"][0]["version"] == "1"
    assert cli.json("endpoints", "list", "--json") == []


@pytest.mark.slow
def test_a_table_into_a_closed_pipe_ends_quietly_with_exit_0(cli, trained):
    """``kerasjob models show keras-mnist | head -0``: rich's console exited 1 where print's closed pipe exits 0."""
    for command in (["models", "show", "keras-mnist"], ["models", "list"], ["runs", "list"]):
        reader, writer = os.pipe()
        os.close(reader)
        done = subprocess.run([sys.executable, "-m", "kerasjob.cli", *command], stdout=writer,
                              stderr=subprocess.PIPE, text=True, env=cli.env, cwd=cli.cwd)
        os.close(writer)
        assert (done.returncode, done.stderr) == (0, ""), command


@pytest.mark.slow
def test_predict_json_has_no_progress_bar_and_no_tensorflow_noise(cli, data, trained):
    images, labels = data / "t10k-images-idx3-ubyte.gz", data / "t10k-labels-idx1-ubyte.gz"
    document = cli.json("predict", "keras-mnist", str(images), "--labels", str(labels), "--json")
    assert len(document["digits"]) == 100 and 0 <= document["accuracy"] <= 1
    plain = cli.run("predict", "keras-mnist:1", str(images))
    assert plain.returncode == 0 and "step" not in plain.stdout and "\x1b" not in plain.stdout
    assert not any(is_framework_noise(line) for line in plain.stderr.splitlines())


@pytest.mark.slow
def test_deploy_and_invoke_print_one_json_document_and_delete_leaves_no_log_behind(cli, data, trained):
    deployed = cli.json("deploy", "keras-mnist", "--endpoint", "json-check", "--json")
    try:
        assert deployed["running"] and Path(deployed["log_path"]).is_file()
        served = cli.json("endpoints", "invoke", "json-check", str(data / "t10k-images-idx3-ubyte.gz"), "--json")
        assert len(served["digits"]) == 100
        assert [entry["name"] for entry in cli.json("endpoints", "list", "--json")] == ["json-check"]
    finally:
        assert cli.run("endpoints", "delete", "json-check").returncode == 0
    assert list(Path(deployed["log_path"]).parent.glob("json-check*")) == []  # its log went with it


@pytest.mark.slow
def test_a_failed_run_and_a_no_wait_run_print_one_json_document(cli, data, trained):
    job = cli.cwd / "failing-job"
    job.mkdir()
    (job / "train.py").write_text("import sys\nprint('about to fail')\nsys.exit(3)\n")
    failed = cli.json("submit", "--source-dir", str(job), "--data-folder", str(data), "--json", code=1)
    assert failed["status"] == "failed" and failed["run_id"]
    started = cli.json("submit", "--data-folder", str(data), *FAST, "--no-wait", "--json")
    assert started["model"] is None
    # listed at once, before its supervisor has created its MLflow run (it was missing for 1-3 s)
    assert started["run_id"] in [run["run_id"] for run in cli.json("runs", "list", "--json")]
    deadline = time.monotonic() + 180  # leave nothing running behind the test
    while cli.json("runs", "show", started["run_id"], "--json")["status"] not in ("completed", "failed") \
            and time.monotonic() < deadline:
        time.sleep(0.5)


def test_is_framework_noise_knows_tensorflow_and_cuda_start_up_lines_and_keeps_the_jobs_own():
    noise = ["WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
             "I0000 00:00:1796396997.633759    4894 port.cc:153] oneDNN custom operations are on.",
             "I0000 00:00:1796396997.634394    4894 cudart_stub.cc:31] Could not find cuda drivers on your machine",
             "E0000 00:00:1796397006.047061    4894 cuda_platform.cc:52] failed call to cuInit: INTERNAL: (303)",
             "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow"]
    kept = ["Epoch 1/1 - 4.6s - train loss 2.1637 - Loss 1.9573 - Accuracy 0.2600", "Final test accuracy: 0.26",
            "E0000 00:00:1796397006.047061    4894 op_kernel.cc:52] OOM when allocating tensor",
            "Traceback (most recent call last):"]
    assert [is_framework_noise(line) for line in noise + kept] == [True] * len(noise) + [False] * len(kept)


@pytest.mark.slow
def test_the_readmes_use_the_model_block_runs_as_written_in_a_fresh_folder(cli, trained, tmp_path):
    """It failed without MLFLOW_TRACKING_URI set, and MLflow then made ./mlflow.db in the current folder."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"<!-- use-the-model -->\n```python\n(.*?)```", readme, re.S).group(1)
    script = tmp_path / "use_the_model.py"
    script.write_text(block.replace("model.predict(", "print(model.predict(").replace(".shape", ".shape)"))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                          env=cli.env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "(3, 10)"
    assert not (tmp_path / "mlflow.db").exists()



def test_quiet_native_stderr_holds_back_only_the_noise_and_leaves_the_environment_as_found(capfd, monkeypatch):
    from kerasjob.quiet import quiet_native_stderr

    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.setenv("GRPC_VERBOSITY", "DEBUG")  # the user's own setting wins
    with quiet_native_stderr():
        assert (os.environ["TF_CPP_MIN_LOG_LEVEL"], os.environ["GRPC_VERBOSITY"]) == ("3", "DEBUG")
        os.write(2, b"I0000 00:00:1796396997.633759    4894 port.cc:153] oneDNN custom operations are on.\n"
                    b"a warning of the job's own\n")
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ and os.environ["GRPC_VERBOSITY"] == "DEBUG"
    assert capfd.readouterr().err == "a warning of the job's own\n"


_TENSORFLOW_PROBE = '''import atexit, os, sys
def _report():
    with open(os.environ["KERASJOB_TEST_TF_PROBE"], "a") as stream:
        stream.write(os.path.basename(sys.argv[0]) + " " + str("tensorflow" in sys.modules) + "\\n")
if os.environ.get("KERASJOB_TEST_TF_PROBE"):
    atexit.register(_report)
'''


@pytest.mark.slow
def test_a_jax_submit_never_imports_tensorflow_although_it_is_installed(cli, data, tmp_path):
    """Keras's saving and set_random_seed asked ``tf.available``, which imports TensorFlow (and its CUDA lines)
    on a JAX run. A sitecustomize on PYTHONPATH reports, as each process of the run exits, whether it imported
    TensorFlow: the CLI, the supervisor and the trainer."""
    import importlib.util

    assert importlib.util.find_spec("tensorflow") is not None  # installed: the import is what is avoided
    probe_dir, report = tmp_path / "probe", tmp_path / "tensorflow-imported.txt"
    probe_dir.mkdir()
    (probe_dir / "sitecustomize.py").write_text(_TENSORFLOW_PROBE)
    env = {**cli.env, "PYTHONPATH": f"{probe_dir}{os.pathsep}{cli.env['PYTHONPATH']}",
           "KERASJOB_TEST_TF_PROBE": str(report)}
    done = subprocess.run([sys.executable, "-m", "kerasjob.cli", "submit", "--data-folder", str(data), *FAST,
                           "--keras-backend", "jax", "--seed", "1", "--json"],
                          capture_output=True, text=True, env=env, cwd=cli.cwd, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["status"] == "completed"
    assert not any(word in line for line in done.stderr.splitlines() for word in FOREIGN), done.stderr
    processes = dict(line.split() for line in report.read_text().splitlines())
    assert "keras_mnist.py" in processes, processes  # the trainer reported
    assert set(processes.values()) == {"False"}, processes


@pytest.mark.slow
def test_the_endpoints_log_has_no_progress_bar_and_the_model_predicts_quietly(cli, data, trained, tmp_path):
    """mlflow.keras's pyfunc model called Keras's predict with its progress bar: one line of ANSI escapes per
    request in the server's log. The saved model's pyfunc loader (pyfunc_loader.py) predicts with verbose=0 and
    keeps the keras flavor, the signature and the input example."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, numpy as np, mlflow, mlflow.pyfunc\n"
         "mlflow.set_tracking_uri(sys.argv[2])\n"
         "info = mlflow.models.get_model_info(sys.argv[1])\n"
         "assert set(info.flavors) == {'keras', 'python_function'}, info.flavors\n"
         "assert info.signature is not None and info.saved_input_example_info is not None\n"
         "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
         "print(model.predict(np.zeros((3, 784), 'float32')).shape)\n",
         "models:/keras-mnist/1", f"sqlite:///{cli.cwd / 'home' / 'mlflow.db'}"],
        capture_output=True, text=True, env=cli.env, cwd=tmp_path, timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout == "(3, 10)\n"  # nothing else: no "1/1 ━━━ 0s 40ms/step"
    deployed = cli.json("deploy", "keras-mnist", "--endpoint", "quiet-log", "--json")
    try:
        for _ in range(2):
            assert len(cli.json("endpoints", "invoke", "quiet-log", str(data / "t10k-images-idx3-ubyte.gz"),
                                "--json")["digits"]) == 100
        log = Path(deployed["log_path"]).read_text(errors="replace")
        assert "step" not in log and "\x1b" not in log and "━" not in log, log[-2000:]
    finally:
        assert cli.run("endpoints", "delete", "quiet-log").returncode == 0
