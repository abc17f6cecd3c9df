"""The package's shape: every module imports alone, no import cycle, no backend chosen by name outside
the backend table, and every public module declares ``__all__``. Fast: no TensorFlow, no SDK calls."""

from __future__ import annotations

import ast
import json
import pkgutil
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import kerasjob

PACKAGE_DIR = Path(kerasjob.__file__).resolve().parent
SOURCE_ROOT = PACKAGE_DIR.parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def all_module_names() -> list[str]:
    return sorted(info.name for info in pkgutil.walk_packages(kerasjob.__path__, "kerasjob."))


#: A string naming a module the way ``importlib.import_module`` / ``python -m`` / ``"module:attr"`` tables do.
NAMED_MODULE = re.compile(r"(?P<module>kerasjob(?:\.[A-Za-z_]\w*)+)(?::(?P<attr>[A-Za-z_]\w*))?")


def loaded_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node Python may run: all but the bodies of ``if TYPE_CHECKING:`` (read by mypy, never loaded)."""
    found: list[ast.AST] = []
    pending = [tree]
    while pending:
        node = pending.pop()
        found.append(node)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))
    return found


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The kerasjob modules that module ``name`` imports, anywhere in its body (functions included), a module
    named in a string literal included: ``importlib.import_module("kerasjob.x")`` or ``"kerasjob.x:attr"`` loads it
    as surely as an import statement does."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def add(target: str) -> None:
        while target and target not in known:  # `import kerasjob.a.b` names kerasjob.a.b, or a name inside it
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)

    for node in loaded_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            named = NAMED_MODULE.fullmatch(node.value)  # "kerasjob.x", "kerasjob.x:attr", "kerasjob.x.attr"
            target = named["module"] if named else ""
            while target and target not in known:  # a tag such as "kerasjob.run_id" names no module
                target = target.rpartition(".")[0]
            if target not in ("", "kerasjob"):
                add(target)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "kerasjob":
                    add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "kerasjob":
                origin = node.module
            else:
                continue
            for alias in node.names:  # `from . import x` imports module x when there is one
                submodule = f"{origin}.{alias.name}"
                add(submodule if submodule in known else origin)
    return found


def import_graph() -> dict[str, set[str]]:
    files = source_files()
    known = set(files)
    return {name: imported_modules(name, path, known) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module (or a module importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_walk_packages_finds_the_source_tree() -> None:
    assert set(all_module_names()) == set(source_files()) - {"kerasjob"}


def test_every_module_imports_alone() -> None:
    """Each module in a fresh state: kerasjob.* is cleared from sys.modules before each import."""
    script = (
        "import importlib, json, sys, traceback\n"
        "failures = {}\n"
        "for name in json.loads(sys.argv[1]):\n"
        "    for loaded in [m for m in sys.modules if m == 'kerasjob' or m.startswith('kerasjob.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except BaseException:\n"
        "        failures[name] = traceback.format_exc()\n"
        "print(json.dumps({'failures': failures, 'tensorflow': 'tensorflow' in sys.modules}))\n"
    )
    names = [name for name in all_module_names() if not name.endswith(".__main__")]  # running it is its job
    done = subprocess.run([sys.executable, "-c", script, json.dumps(names)],
                          capture_output=True, text=True, timeout=120, check=True)
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["failures"] == {}, "\n".join(f"{name}:\n{error}" for name, error in outcome["failures"].items())
    assert not outcome["tensorflow"], "importing kerasjob's modules loaded TensorFlow"


def cycle_path(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One real cycle through ``component`` (a strongly connected one), start to start."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for target in sorted(graph[node] & members):
            if target == start:
                return paths[node] + [start]
            if target not in paths:
                paths[target] = paths[node] + [target]
                queue.append(target)
    return component


def test_no_import_cycle() -> None:
    graph = import_graph()
    found = [cycle_path(graph, component) for component in cycles(graph)]
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in found)


#: The facades: they ask a backend and never name one; no backend imports them.
FACADES = ("kerasjob.run", "kerasjob.tuning", "kerasjob.endpoints", "kerasjob.fit", "kerasjob.cli")


def is_facade(module: str) -> bool:
    return any(module == facade or module.startswith(facade + ".") for facade in FACADES)


def test_no_backend_imports_a_facade() -> None:
    """Layers point down: a backend's package imports the core and its own modules, never ``run``, ``tuning``,
    ``endpoints``, ``fit`` or ``cli`` (a module named in a string included)."""
    graph = import_graph()
    hits = [f"{name} -> {target}" for name, targets in sorted(graph.items()) if name.startswith("kerasjob.backends.")
            for target in sorted(targets) if is_facade(target)]
    assert not hits, "\n".join(hits)


#: Core reaching up, known and to be closed: ``predict("NAME@champion")`` resolves the reference in the local
#: registry (docs/ARCHITECTURE.md, "Known exception").
KNOWN_CORE_REACHES = {("kerasjob.prediction", "kerasjob.backends.local.runs"),
                      ("kerasjob.prediction", "kerasjob.backends.local.tracking")}


def is_alias(path: Path) -> bool:
    """An old module path kept one release: a package that puts the moved module in its place."""
    return "sys.modules[__name__] = _moved" in path.read_text(encoding="utf-8")


def test_the_core_imports_no_backend_and_no_facade() -> None:
    """The bottom layer: everything outside backends/, the facades, cli/ and testing/ imports neither a backend's
    package (their interfaces in ``backends.base`` are core) nor a facade."""
    files = source_files()
    graph = import_graph()
    hits = [f"{name} -> {target}" for name, targets in sorted(graph.items())
            if not name.startswith(("kerasjob.backends", "kerasjob.testing")) and not is_facade(name)
            and name not in ("kerasjob", "kerasjob.__main__") and not is_alias(files[name])
            for target in sorted(targets)
            if ((target.startswith("kerasjob.backends") and target != "kerasjob.backends.base") or is_facade(target))
            and (name, target) not in KNOWN_CORE_REACHES]
    assert not hits, "\n".join(hits)


def test_strings_naming_modules_count_as_imports() -> None:
    """``importlib.import_module("kerasjob.x")``, ``"kerasjob.x:attr"`` (``BACKENDS``) and ``python -m kerasjob.x``
    load a module as an import does; a tag such as ``"kerasjob.run_id"`` names none; ``if TYPE_CHECKING:`` loads
    nothing."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from kerasjob.z import Z\n"
        "TABLE = {'x': 'kerasjob.x:Thing'}\n"
        "def f():\n    return importlib.import_module('kerasjob.y'), ['-m', 'kerasjob.w'], 'kerasjob.run_id'\n")
    known = {"kerasjob", "kerasjob.a", "kerasjob.w", "kerasjob.x", "kerasjob.y", "kerasjob.z"}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "a.py"
        path.write_text(source, encoding="utf-8")
        assert imported_modules("kerasjob.a", path, known) == {"kerasjob.w", "kerasjob.x", "kerasjob.y"}


def test_cycle_finder_reports_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert sorted(cycles(graph)) == [["a", "b", "c"], ["e"]]


def test_no_backend_chosen_by_name() -> None:
    """What varies by backend is a Backend method, never ``if backend.name == "local"``."""
    pattern = re.compile(r"""\.name == ["'](local|azureml)""")
    hits = [f"{path.relative_to(SOURCE_ROOT)}:{number}: {line.strip()}"
            for path in sorted(PACKAGE_DIR.rglob("*.py"))
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert not hits, "\n".join(hits)


def declares_all(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, (ast.AnnAssign, ast.AugAssign)) else []
        if any(isinstance(target, ast.Name) and target.id == "__all__" for target in targets):
            return True
    return False


def test_every_public_module_declares_all() -> None:
    missing = [name for name, path in source_files().items()
               if not any(part.startswith("_") for part in name.split(".")[1:]) and not declares_all(path)]
    assert not missing, f"modules without __all__: {', '.join(missing)}"
