"""The bad-input table through the command: every refusal exits 2 before anything starts, names the flag the
user typed (not an API field), names only flags that exist, and prints no traceback.

``benchmarks/cli_refusals.py`` times the same rows (each well under a second)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Callable

import pytest

from kerasjob.cli import main
from kerasjob.cli.parser import build_parser
from kerasjob.testing import FakeMLClient

from mnist_files import make_tiny_mnist

Build = Callable[[Path], list[str]]


def _corrupted_mid_file(tmp: Path) -> Path:
    """A .gz whose header and length are sound but whose middle is not: only reading it whole tells."""
    folder = make_tiny_mnist(tmp / "corrupted")
    images = folder / "train-images-idx3-ubyte.gz"
    data = bytearray(images.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 16] = bytes(255 - b for b in data[middle:middle + 16])
    images.write_bytes(bytes(data))
    return folder


def _truncated(tmp: Path) -> Path:
    folder = make_tiny_mnist(tmp / "truncated")
    images = folder / "train-images-idx3-ubyte.gz"
    images.write_bytes(gzip.compress(gzip.decompress(images.read_bytes())[:-500]))
    return folder


def _cut_short(tmp: Path) -> Path:
    """A .gz cut after 2,000 bytes, as an interrupted download leaves it."""
    folder = make_tiny_mnist(tmp / "cut")
    images = folder / "train-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:2000])
    return folder


def _source(tmp: Path, files: dict[str, str] | None = None) -> Path:
    source = tmp / "job"
    source.mkdir(exist_ok=True)
    (source / "train.py").write_text("print('training')\n")
    for name, text in (files or {}).items():
        (source / name).write_text(text)
    return source


def _config(tmp: Path, text: str) -> Path:
    path = tmp / "config.json"
    path.write_text(text)
    return path


GOOD_CONFIG = '{"subscription_id": "00000000-0000-0000-0000-000000000000", "resource_group": "rg", ' \
              '"workspace_name": "ws"}'

#: (case, argv builder, the flag the message must name)
CASES: list[tuple[str, Build, str]] = [
    ("epochs-zero", lambda t: ["submit", "--epochs", "0"], "--epochs"),
    ("batch-size-zero", lambda t: ["submit", "--batch-size", "0"], "--batch-size"),
    ("learning-rate-zero", lambda t: ["submit", "--learning-rate", "0"], "--learning-rate"),
    ("epochs-not-a-number", lambda t: ["submit", "--epochs", "two"], "--epochs"),
    ("abbreviated-flag", lambda t: ["submit", "--epoch", "1"], "--epochs"),
    ("unknown-flag", lambda t: ["submit", "--bogus"], "--bogus"),
    ("data-folder-missing", lambda t: ["submit", "--data-folder", str(t / "nowhere")], "--data-folder"),
    ("data-corrupted-mid-file", lambda t: ["submit", "--data-folder", str(_corrupted_mid_file(t))], "--data-folder"),
    ("data-truncated", lambda t: ["submit", "--data-folder", str(_truncated(t))], "--data-folder"),
    ("offline-without-data-folder", lambda t: ["submit"], "--data-folder"),
    ("home-not-writable", lambda t: ["submit", "--data-folder", str(make_tiny_mnist(t / "d"))], "KERASJOB_HOME"),
    ("experiment-space", lambda t: ["submit", "--experiment", "my experiment"], "--experiment"),
    ("model-name-slash", lambda t: ["submit", "--model-name", "keras/mnist"], "--model-name"),
    ("compute-space", lambda t: ["submit", "--compute", "GPU cluster"], "--compute"),
    ("vm-size", lambda t: ["submit", "--vm-size", "NC6"], "--vm-size"),
    ("workers-zero", lambda t: ["submit", "--workers", "0"], "--workers"),
    ("workers-over-max-nodes", lambda t: ["submit", "--workers", "9", "--max-nodes", "4"], "--max-nodes"),
    ("timeout-negative", lambda t: ["submit", "--timeout", "-5"], "--timeout"),
    ("source-dir-missing", lambda t: ["submit", "--source-dir", str(t / "nowhere")], "--source-dir"),
    ("entry-script-missing", lambda t: ["submit", "--source-dir", str(_source(t)), "--entry-script", "main.py"],
     "--entry-script"),
    ("secrets-in-source", lambda t: ["submit", "--source-dir", str(_source(t, {".env": "KEY=1"}))],
     "--allow-secrets"),
    ("script-arguments-for-the-packaged-script", lambda t: ["submit", "--", "--epochs", "2"], "--source-dir"),
    ("script-arguments-elsewhere", lambda t: ["runs", "list", "--", "x"], "submit"),
    ("keras-backend-unknown", lambda t: ["submit", "--keras-backend", "torch"], "--keras-backend"),
    ("workspace-config-not-json", lambda t: ["submit", "--backend", "azureml-v2", "--workspace-config",
                                             str(_config(t, "{bad")), "--dry-run"], "--workspace-config"),
    ("not-logged-in", lambda t: ["submit", "--backend", "azureml-v2", "--auth", "cli", "--workspace-config",
                                 str(_config(t, GOOD_CONFIG)), "--data-folder", str(make_tiny_mnist(t / "d"))],
     "az login"),
    ("tune-set-not-a-pair", lambda t: ["tune", "--set", "batch_size"], "--set"),
    ("tune-set-wrong-type", lambda t: ["tune", "--set", "batch_size=big"], "--set"),
    ("tune-max-total-runs-zero", lambda t: ["tune", "--max-total-runs", "0"], "--max-total-runs"),
    ("tune-sampling", lambda t: ["tune", "--sampling", "magic"], "--sampling"),
    ("tune-goal", lambda t: ["tune", "--goal", "up"], "--goal"),
    ("predict-unknown-model", lambda t: ["predict", "no-such-model:1",
                                         str(make_tiny_mnist(t / "d") / "t10k-images-idx3-ubyte.gz")], "MODEL"),
    ("predict-labels-not-idx", lambda t: ["predict", str(t), str(t / "x.png"), "--labels",
                                          str(_config(t, "{}"))], "--labels"),
    ("download-onto-a-file", lambda t: ["models", "download", "keras-mnist", str(_config(t, "{}"))],
     "DESTINATION"),
    ("download-unknown-model", lambda t: ["models", "download", "no-such-model", str(t / "model")], "NAME"),
    ("runs-show-unknown", lambda t: ["runs", "show", "0123456789abcdef"], "RUN_ID"),
    ("runs-wait-unknown", lambda t: ["runs", "wait", "0123456789abcdef"], "RUN_ID"),
    ("deploy-bad-endpoint-name", lambda t: ["deploy", str(t), "--endpoint", "Bad_Name"], "--endpoint"),
    ("endpoints-invoke-unknown", lambda t: ["endpoints", "invoke", "no-such-endpoint", str(t / "x.png")], "NAME"),
    # issue 22: what the message says is true
    ("tune-set-unknown-name", lambda t: ["tune", "--set", "nosuch=1", "--dry-run"], "Received: --set nosuch=1"),
    ("tune-set-value-is-about-set", lambda t: ["tune", "--set", "epochs=0", "--dry-run"],
     "Received: --set epochs=0"),
    ("data-cut-short-says-its-size", lambda t: ["submit", "--data-folder", str(_cut_short(t))],
     "ends after 2000 bytes"),
    ("predict-missing-model-folder", lambda t: ["predict", "./no-such-folder",
                                                str(make_tiny_mnist(t / "d") / "t10k-images-idx3-ubyte.gz")],
     "an existing model folder"),
    ("command-misspelled", lambda t: ["sumbit"], "did you mean 'submit'?"),
    ("action-misspelled", lambda t: ["runs", "lsit"], "did you mean 'list'?"),
    ("subscription-id-not-a-guid", lambda t: ["submit", "--backend", "azureml-v2", "--subscription-id", "SUB",
                                              "--resource-group", "rg", "--workspace-name", "ws", "--dry-run"],
     "Invalid --subscription-id"),
    ("runs-delete-unknown", lambda t: ["runs", "delete", "0123456789abcdef"], "RUN_ID"),
    ("runs-download-unknown", lambda t: ["runs", "download", "0123456789abcdef", str(t / "out")], "RUN_ID"),
    ("runs-compare-one-run", lambda t: ["runs", "compare", "0123456789abcdef"], "two or more different run ids"),
    ("models-delete-without-version", lambda t: ["models", "delete", "keras-mnist"], "NAME:VERSION"),
    ("models-delete-unknown", lambda t: ["models", "delete", "no-such-model:1"], "NAME:VERSION"),
    ("ui-port-out-of-range", lambda t: ["ui", "--port", "0"], "--port"),
]

_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]+")


def _known_flags() -> set[str]:
    """Every flag of every command."""
    flags: set[str] = set()
    pending = [build_parser()]
    while pending:
        parser = pending.pop()
        for action in parser._actions:
            flags.update(action.option_strings)
            pending.extend(getattr(action, "_name_parser_map", {}).values())
    return flags


@pytest.fixture
def refusal_setting(request, tmp_path, monkeypatch):
    """What some rows need around them: no MNIST mirror reachable, a home that cannot be written."""
    case = request.node.callspec.params["case"]
    monkeypatch.setenv("KERASJOB_MNIST_MIRRORS", "http://127.0.0.1:9/")  # nothing listens: offline at once
    if case == "home-not-writable":
        blocker = tmp_path / "a-file"
        blocker.write_text("")
        monkeypatch.setenv("KERASJOB_HOME", str(blocker / "home"))  # even root cannot make a folder in a file
    if case == "not-logged-in":
        with FakeMLClient(access="not-logged-in"):
            yield
        return
    yield


def test_the_table_covers_at_least_25_rows():
    assert len(CASES) >= 25


@pytest.mark.parametrize("case, build, flag", CASES, ids=[case for case, _, _ in CASES])
def test_a_refusal_exits_2_names_the_flag_and_starts_nothing(case, build, flag, refusal_setting, tmp_path,
                                                           capsys, isolated_home):
    argv = build(tmp_path)
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own refusals
        code = exit_.code
    captured = capsys.readouterr()
    assert code == 2, (argv, captured.err)
    assert "Traceback" not in captured.err + captured.out
    assert flag in captured.err, captured.err
    typed = {word.split("=")[0] for word in argv}
    for named in set(_FLAG.findall(captured.err)) - typed - {"--help"}:  # every flag a message suggests exists
        assert named in _known_flags(), f"{named} is not a flag: {captured.err}"
    runs = isolated_home / "runs"
    assert not runs.exists() or not any(runs.iterdir()), "a run was started"
