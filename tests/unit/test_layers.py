"""The layers point one way and install under one name (README "Where things are", shared design notes):

    core  <-  suites, actors  <-  orchestrator

core imports nothing else of the project; suites and actors import core (and themselves) only, never the driver and
never each other, not even inside a function; the driver may import everything. Project imports sit at the top of
modules, except a late import of a module that pulls in a heavy engine, marked with a `# late:` comment.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import pathlib
import sys
import tomllib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
LAYERS = {"core": "core", "suites": "suites", "actors": "actors", "orchestrator": "orchestrator", "rmorch": "rmorch"}
# layer -> the layers it may import
ALLOWED = {
    "core": {"core"},
    "suites": {"core", "suites"},
    "actors": {"core", "actors"},
    "orchestrator": {"core", "suites", "actors", "orchestrator"},
    "rmorch": {"core", "suites", "actors", "orchestrator", "rmorch"},
}


def _modules() -> list[tuple[str, pathlib.Path]]:
    return [(layer, path) for layer, folder in LAYERS.items() for path in sorted((REPO / folder).rglob("*.py"))]


def _project_imports(tree: ast.AST) -> list[tuple[ast.stmt, str, int | None]]:
    """(node, imported rmorch module, first line of the function it sits in, or None at module level) for every
    import of the project in a module."""
    out: list[tuple[ast.stmt, str, int | None]] = []

    def visit(node: ast.AST, function: int | None) -> None:
        for child in ast.iter_child_nodes(node):
            inside = child.lineno if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                if child.module == "rmorch" or child.module.startswith("rmorch."):
                    out.append((child, child.module, function))
            elif isinstance(child, ast.Import):
                out.extend((child, a.name, function) for a in child.names if a.name.split(".")[0] == "rmorch")
            visit(child, inside)

    visit(tree, None)
    return out


def _layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "rmorch"


def test_layers_import_only_downwards() -> None:
    wrong = []
    for layer, path in _modules():
        for node, module, _ in _project_imports(ast.parse(path.read_text())):
            if _layer_of(module) not in ALLOWED[layer]:
                wrong.append(f"{path.relative_to(REPO)}:{node.lineno} ({layer}) imports {module}")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_no_relative_or_old_top_level_imports() -> None:
    """Every project import names rmorch.<layer>: `import orchestrator` and relative imports would load a second
    copy of a module under another name."""
    wrong = []
    for _, path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                wrong.append(f"{path.relative_to(REPO)}:{node.lineno}: relative import")
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            wrong += [f"{path.relative_to(REPO)}:{node.lineno}: import {n}" for n in names
                      if n.split(".")[0] in ("core", "suites", "actors", "orchestrator")]
    assert not wrong, "\n".join(wrong)


def test_late_project_imports_below_the_driver_say_why() -> None:
    """Below the driver, a project import inside a function is allowed only with a `# late:` comment between the
    function's first line and the import (the module it imports pulls in torch, transformers, vLLM or httpx)."""
    unmarked = []
    for layer, path in _modules():
        if layer in ("orchestrator", "rmorch"):
            continue
        lines = path.read_text().splitlines()
        for node, module, function in _project_imports(ast.parse("\n".join(lines))):
            if function is not None and not any("# late:" in line for line in lines[function - 1:node.lineno]):
                unmarked.append(f"{path.relative_to(REPO)}:{node.lineno} imports {module} inside a function")
    assert not unmarked, "\n".join(unmarked)


def test_no_cycle_between_the_layers() -> None:
    edges = {(layer, _layer_of(m)) for layer, path in _modules() for _, m, _ in _project_imports(ast.parse(
        path.read_text())) if _layer_of(m) != layer}
    assert not {(a, b) for a, b in edges if (b, a) in edges}


def test_one_import_name_is_installed() -> None:
    """Installed, the project is `rmorch` (and its layers under it); the folders' own names are not importable
    outside the repository."""
    assert importlib.util.find_spec("rmorch.orchestrator.cli") is not None
    outside = [p for p in sys.path if p not in ("", ".") and pathlib.Path(p).resolve() != REPO]
    editable = [f for f in sys.meta_path if getattr(f, "__module__", "").startswith("__editable__")]
    for name in ("orchestrator", "actors", "suites", "core"):
        assert importlib.machinery.PathFinder.find_spec(name, outside) is None, f"`import {name}` works outside"
        assert not any(f.find_spec(name, None) for f in editable), f"the editable install maps `{name}`"


def test_every_package_folder_is_installed() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    tool = pyproject["tool"]["setuptools"]
    declared = set(tool["packages"])
    expected = set()
    for layer, folder in LAYERS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder).parts
            expected.add(".".join(["rmorch"] + ([] if layer == "rmorch" else [layer]) + list(rel)))
    assert declared == expected, f"pyproject [tool.setuptools] packages: missing {expected - declared}, " \
                                 f"extra {declared - expected}"
    assert tool["package-dir"] == {("rmorch" if layer == "rmorch" else f"rmorch.{layer}"): folder
                                   for layer, folder in LAYERS.items()}


@pytest.mark.parametrize("name", ["run_sweep", "load_spec", "build_report", "write_report", "register_kind",
                                  "register_suite", "ModelKind", "Suite", "UserError"])
def test_the_facade(name: str) -> None:
    import rmorch

    assert getattr(rmorch, name) is not None and name in dir(rmorch)
