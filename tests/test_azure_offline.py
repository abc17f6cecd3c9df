"""Without a network, every Azure command says so in one line (issue 21, defect 5).

The real SDKs run, no fake: a child process whose name lookups all fail (``socket.getaddrinfo`` raises as with
no network or no DNS) runs each Azure command of the CLI, with its stdout and stderr captured at the file
descriptors, so that what azureml-core prints ("Performing interactive authentication...") and what the SDKs
log (``DefaultAzureCredential``'s list of credentials, azureml-core's "unable to load cloud metadata") is seen
as a user would see it. Each command must exit 2 with one line on stderr naming the host that does not resolve,
and nothing on stdout (``--json`` stays pure).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kerasjob.azure_errors import translate_access_error
from kerasjob.errors import AzureUnreachable

CHILD = textwrap.dedent("""
    import json, os, socket, sys
    real = socket.getaddrinfo
    def offline(host, *args, **kwargs):
        if host in ("localhost", "127.0.0.1", "::1"):
            return real(host, *args, **kwargs)
        raise socket.gaierror(-2, "Name or service not known")
    socket.getaddrinfo = offline
    from kerasjob.cli import main
    results = []
    for number, command in enumerate(json.loads(sys.argv[1])):
        out, err = f"out-{number}.txt", f"err-{number}.txt"
        sys.stdout.flush(); sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        with open(out, "w") as o, open(err, "w") as e:
            os.dup2(o.fileno(), 1); os.dup2(e.fileno(), 2)
            try:
                code = main(command)
            except SystemExit as exit:
                code = exit.code
            sys.stdout.flush(); sys.stderr.flush()
            os.dup2(saved[0], 1); os.dup2(saved[1], 2)
        results.append({"command": command, "code": code, "out": open(out).read(), "err": open(err).read()})
    print(json.dumps(results))
""")


def _commands(backend: str, config: Path, idx: Path) -> list[list[str]]:
    where = ["--backend", backend, "--workspace-config", str(config)]
    return [
        ["submit", *where, "--json"],
        ["submit", *where, "--no-wait", "--json"],
        ["tune", *where, "--json", "--quiet"],
        ["runs", "show", "some-run", *where],
        ["runs", "wait", "some-run", *where],
        ["runs", "cancel", "some-run", *where],
        ["runs", "logs", "some-run", *where],
        ["deploy", "keras-mnist:1", "--endpoint", "mnist", "--json", *where],
        ["endpoints", "list", *where],
        ["endpoints", "invoke", "mnist", str(idx), "--json", *where],
        ["endpoints", "logs", "mnist", *where],
        ["endpoints", "delete", "mnist", *where],
    ]


@pytest.mark.parametrize("backend", ["azureml", "azureml-v2"])
def test_every_azure_command_offline_prints_one_line_naming_the_host_and_nothing_on_stdout(backend, tmp_path,
                                                                                          workspace_config):
    idx = tmp_path / "images-idx3-ubyte"
    idx.write_bytes(b"")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AZURE_", "MSI_", "IDENTITY_"))}  # no service principal, no managed identity
    env.update(PYTHONPATH=os.pathsep.join(sys.path), PATH=os.path.dirname(sys.executable))  # and no `az` CLI
    commands = _commands(backend, workspace_config, idx)
    child = subprocess.run([sys.executable, "-c", CHILD, json.dumps(commands)], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=540)
    assert child.returncode == 0, child.stderr[-3000:]
    for result in json.loads(child.stdout.splitlines()[-1]):
        shown = f"{result['command']}: {result}"
        assert result["code"] == 2, shown
        assert result["out"] == "", shown
        lines = result["err"].strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("kerasjob: Azure cannot be reached"), shown
        assert "management.azure.com" in lines[0] or "login.microsoftonline.com" in lines[0], shown
        assert "Traceback" not in result["err"] and ".." not in lines[0], shown


def test_a_name_lookup_failure_in_the_cause_chain_is_azure_unreachable_naming_the_host():
    class NameResolutionError(Exception):
        ...

    class AuthenticationException(Exception):
        ...

    try:
        try:
            raise NameResolutionError("HTTPSConnection(host='management.azure.com', port=443): Failed to resolve "
                                      "'management.azure.com' ([Errno -2] Name or service not known)")
        except NameResolutionError as cause:
            raise AuthenticationException("") from cause
    except AuthenticationException as error:
        translated = translate_access_error(error)
    assert isinstance(translated, AzureUnreachable) and translated.host == "management.azure.com"
    assert "login" not in str(translated).lower()
