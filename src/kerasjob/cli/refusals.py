"""kerasjob's errors in the command's words: the exit code, and messages that name the flags the user typed.

The API names its arguments (``Invalid `hyperparameters['epochs']` ``); the command names its flags
(``Invalid --epochs``). A hint names API fields in backticks (```max_nodes` ``, ```allow_secrets=True` ``);
each becomes the flag that sets it.

Example:
    >>> from kerasjob.cli.parser import build_parser
    >>> from kerasjob.errors import ValidationError
    >>> submit = build_parser().parse_args(["submit"]).parser
    >>> in_flags(ValidationError("hyperparameters['epochs']", "an integer >= 1", 0), submit)
    'Invalid --epochs: expected an integer >= 1. Received: --epochs 0'
"""

from __future__ import annotations

import argparse
import re

from ..errors import AzureAccessError, BackendUnavailable, DataError, KerasJobError, ValidationError

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "NOTHING_STARTED", "exit_code",
           "flag_for_argument", "in_flags"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130

#: Errors raised before anything was uploaded, created or started: exit 2.
NOTHING_STARTED = (ValidationError, BackendUnavailable, AzureAccessError, DataError)

#: API argument -> the dests of the flags that may set it, in order (the first the command has wins).
_DESTS_OF = {"data": ("data_folder",), "distribution": ("workers",), "worker_count": ("workers",),
             "images": ("files",), "endpoint": ("endpoint", "name"), "model": ("model", "name"),
             "hyperparameters": ("fixed",),
             # a version or alias that a model reference (NAME:VERSION, NAME@ALIAS) named
             "version": ("version", "model", "name"), "alias": ("alias", "model", "name")}
#: API arguments that no flag sets, in the command's words.
_SHOWN_AS = {"arguments": "arguments after --"}
_HYPERPARAMETER = re.compile(r"hyperparameters\['(\w+)'\]")
_FIELD_IN_HINT = re.compile(r"`(\w+)(?:=([^`]*))?`")


def exit_code(error: BaseException) -> int:
    """0, 1, 2 or 130 for an error that ended a command."""
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_BAD_INPUT if isinstance(error, NOTHING_STARTED) else EXIT_FAILED


def _dest_for_argument(argument: str, parser: argparse.ArgumentParser,
                       typed: argparse.Namespace | None = None) -> str | None:
    """The dest of the flag that sets ``argument``: of the flags that may, the first the user typed, else the
    first the command has."""
    match = _HYPERPARAMETER.fullmatch(argument)
    name = match.group(1) if match else argument
    candidates = list(_DESTS_OF.get(name, ())) + [name, f"script_{name}"]
    if match:  # the script's seed is --seed (dest script_seed); a sweep's sampler seed is --sampler-seed
        candidates = (["script_seed"] if name == "seed" else candidates) + ["fixed"]  # tune's --set NAME=VALUE
        if any(pair.partition("=")[0] == name for pair in getattr(typed, "fixed", None) or []):
            candidates = ["fixed"]  # `tune --set epochs=0` is about --set, though tune has --epochs too
    dests = [dest for dest in candidates
             if dest in {action.dest for action in parser._actions if action.help != argparse.SUPPRESS}]
    typed_dests = [dest for dest in dests if typed is not None and getattr(typed, dest, None) not in (None, [])]
    return next(iter(typed_dests + dests), None)


def flag_for_argument(argument: str, parser: argparse.ArgumentParser | None,
                      typed: argparse.Namespace | None = None) -> str | None:
    """The flag (or positional's name) of ``parser`` that sets API argument ``argument``; None if none does."""
    dest = _dest_for_argument(argument, parser, typed) if parser is not None else None
    if dest is None or parser is None:
        return None
    action = next(action for action in parser._actions if action.dest == dest)
    if not action.option_strings:
        return str(action.metavar or dest.upper())
    return max(action.option_strings, key=len)


def _render_hint(hint: str, parser: argparse.ArgumentParser | None) -> str:
    def replace(match: re.Match[str]) -> str:
        flag = flag_for_argument(match.group(1), parser)
        if flag is None:
            return match.group(0)
        value = match.group(2)
        return flag if value in (None, "True") else f"{flag} {value.strip(chr(39))}"

    return _FIELD_IN_HINT.sub(replace, hint)


def _typed_pair(error: ValidationError, pairs: list[str]) -> str:
    """The ``--set NAME=VALUE`` the user typed that ``error`` is about: a wrong value names the hyperparameter
    (``hyperparameters['epochs']``), an unknown name is the received value itself."""
    match = _HYPERPARAMETER.fullmatch(error.argument)
    name = match.group(1) if match else str(error.received).partition("=")[0]
    typed = next((pair for pair in pairs if pair.partition("=")[0] == name), None)
    if typed is not None:
        return typed
    return f"{name}={error.received}" if match else str(error.received)


def in_flags(error: BaseException, parser: argparse.ArgumentParser | None,
             typed: argparse.Namespace | None = None) -> str:
    """``error``'s message, with API argument names turned into the flags of ``parser``; what was received is
    shown as the user typed it (``typed``, the parsed flags) where it came from one flag."""
    if isinstance(error, ValidationError):
        flag = flag_for_argument(error.argument, parser, typed)
        if flag is not None and parser is not None:
            hint = f" {_render_hint(error.hint, parser)}" if error.hint else ""
            dest = _dest_for_argument(error.argument, parser, typed)
            received: object = getattr(typed, dest, None) if typed is not None and dest else None
            if received is None or isinstance(received, list):
                received = error.received
            if dest == "fixed":
                received = _typed_pair(error, getattr(typed, "fixed", None) or [])
            shown = f"{flag} {received}" if flag.startswith("-") else f"{flag}={received!r}"
            return f"Invalid {flag}: expected {error.expected}.{hint} Received: {shown}"
        if error.argument in _SHOWN_AS:
            hint = f" {_render_hint(error.hint, parser)}" if error.hint else ""
            given = " ".join(map(str, error.received)) if isinstance(error.received, tuple) else error.received
            return f"Invalid {_SHOWN_AS[error.argument]}: expected {error.expected}.{hint} Received: {given}"
        if error.hint:
            return str(error).replace(error.hint, _render_hint(error.hint, parser))
    return _render_hint(str(error), parser) if isinstance(error, KerasJobError) else str(error)
