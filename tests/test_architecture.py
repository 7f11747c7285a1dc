"""The import contract: the layers show in the folders, and nothing crosses them the wrong way.

Read from the source with `ast` (every import, also those inside functions and under
TYPE_CHECKING), because ``plugins/`` and ``harvesters/`` install under the ``monalia`` namespace
from folders of their own, which import graph tools that walk one package folder do not see.

Layers, lowest first; a module may import its own layer and those below it:

0. ``monalia.errors`` and ``monalia.version``
1. ``monalia`` (the package's ``__init__``: ``hookimpl`` and the plugin API's names),
   ``monalia.api`` (the plugin API) and ``monalia.lib`` (shared libraries)
2. ``monalia.catalog`` and ``monalia.project`` (the project file)
3. ``monalia.executors``
4. ``monalia.stages``
5. ``monalia.cli``, ``monalia.web`` (the workbench), ``monalia.testing`` and
   ``monalia.harvesters`` (the crawl process)

The built-in plugins (``monalia.builtins``) import only layers 0 and 1 and their own package;
nothing outside ``plugins/`` imports a built-in plugin.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"monalia": "monalia", "plugins": "monalia.builtins", "harvesters": "monalia.harvesters"}
LAYERS = {
    "monalia": 1,
    "monalia.errors": 0,
    "monalia.version": 0,
    "monalia.api": 1,
    "monalia.lib": 1,
    "monalia.catalog": 2,
    "monalia.project": 2,
    "monalia.executors": 3,
    "monalia.stages": 4,
    "monalia.cli": 5,
    "monalia.testing": 5,
    "monalia.web": 5,
    "monalia.harvesters": 5,
    "monalia.__main__": 5,
}
PLUGIN_API = ("monalia", "monalia.errors", "monalia.version", "monalia.api", "monalia.lib")


def module_files() -> dict[str, Path]:
    modules = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    return modules


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The monalia modules `name` imports (a `from X import Y` of a module counts as X.Y)."""
    found = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = name.split(".")
                parent = parent[: len(parent) - node.level + (1 if is_package else 0)]
                base = ".".join(parent + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in known else base)
    return {module for module in found if module == "monalia" or module.startswith("monalia.")}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    files = module_files()
    known = set(files)
    return {name: imports_of(name, path, known) - {name} for name, path in files.items()}


def layer_of(module: str) -> str | None:
    best = None
    for prefix in LAYERS:
        if (module == prefix or module.startswith(prefix + ".")) and (
            best is None or len(prefix) > len(best)
        ):
            best = prefix
    return best


def test_the_graph_sees_every_part(graph):
    for expected in (
        "monalia.api.trainer",
        "monalia.stages.enrich",
        "monalia.builtins.trainers.cnn.fit",
        "monalia.builtins.sources.iiif",
        "monalia.harvesters.crawl",
    ):
        assert expected in graph, f"{expected} was not found: the contract would not see it"


def test_plugins_import_only_the_plugin_api_and_the_libraries(graph):
    wrong = []
    for module, imported in graph.items():
        if not module.startswith("monalia.builtins."):
            continue
        own = ".".join(module.split(".")[:4])  # monalia.builtins.KIND.PLUGIN
        for target in imported:
            if target.startswith("monalia.builtins."):
                if not (target == own or target.startswith(own + ".")):
                    wrong.append(f"{module} imports another plugin, {target}")
            elif layer_of(target) not in PLUGIN_API:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "plugins reach past the plugin API:\n" + "\n".join(sorted(wrong))


def test_nothing_outside_the_plugins_imports_a_built_in_plugin(graph):
    wrong = [
        f"{module} imports {target}"
        for module, imported in graph.items()
        if not module.startswith("monalia.builtins")
        for target in imported
        if target.startswith("monalia.builtins")
    ]
    assert not wrong, "the core depends on a built-in plugin:\n" + "\n".join(sorted(wrong))


def test_every_layer_imports_only_itself_and_the_layers_below(graph):
    wrong = []
    for module, imported in graph.items():
        if module.startswith("monalia.builtins"):
            continue
        own = layer_of(module)
        assert own is not None, f"{module} belongs to no layer: add its folder to LAYERS"
        for target in imported:
            if target.startswith("monalia.builtins"):
                continue  # the test above
            other = layer_of(target)
            if LAYERS[other] > LAYERS[own]:
                wrong.append(f"{module} (layer {own}) imports {target} (layer {other}, above)")
    assert not wrong, "imports that go up the layers:\n" + "\n".join(sorted(wrong))


def test_no_import_cycle(graph):
    """Tarjan's strongly connected components: any with two modules or more is a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]
    edges = defaultdict(set, {m: {t for t in ts if t in graph} for m, ts in graph.items()})

    def visit(node: str) -> None:
        # iterative: the import graph is deep enough to matter for recursion limits
        work = [(node, iter(sorted(edges[node])))]
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        while work:
            current, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[current] = min(low[current], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[current])
            if low[current] == index[current]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == current:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_contract_catches_a_violation(tmp_path):
    """The checks above fail on a new violation (a check that cannot fail proves nothing)."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from monalia.stages.enrich import enrich\nfrom monalia.builtins.trainers import cnn\n"
    )
    known = set(module_files())
    imported = imports_of("monalia.api.bad", bad, known)
    assert "monalia.stages.enrich" in imported
    assert LAYERS[layer_of("monalia.stages.enrich")] > LAYERS[layer_of("monalia.api.bad")]
    assert any(target.startswith("monalia.builtins") for target in imported)


def _names_a_plugin(node: ast.AST) -> bool:
    """An expression that holds a plugin's name: `x.name`, `x.plugin`, `name`, `plugin`."""
    if isinstance(node, ast.Attribute):
        return node.attr in ("name", "plugin", "trainer", "labeler")
    return isinstance(node, ast.Name) and node.id in ("name", "plugin", "plugin_name")


def test_no_plugin_name_is_tested_outside_the_plugins():
    """The core treats every plugin alike: it never compares a name to a built-in's."""
    names = set()
    for path in (ROOT / "plugins").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if (
                        isinstance(item, ast.Assign)
                        and any(isinstance(t, ast.Name) and t.id == "name" for t in item.targets)
                        and isinstance(item.value, ast.Constant)
                    ):
                        names.add(item.value.value)
    assert {"cnn", "skos", "iiif", "turtle", "embedded-store"} <= names
    wrong = []
    for folder in ("monalia", "harvesters"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Compare):
                    operands = [node.left, *node.comparators]
                    if not any(_names_a_plugin(operand) for operand in operands):
                        continue  # e.g. an export format that happens to share a name
                    for operand in operands:
                        values = []
                        if isinstance(operand, ast.Constant):
                            values = [operand.value]
                        elif isinstance(operand, ast.Tuple | ast.List | ast.Set):
                            values = [e.value for e in operand.elts if isinstance(e, ast.Constant)]
                        hits = [v for v in values if isinstance(v, str) and v in names]
                        if hits:
                            wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} tests {hits}")
    assert not wrong, "plugin names tested outside plugins/:\n" + "\n".join(sorted(wrong))
