"""The import contract: the layers show in the folders, and nothing crosses them the wrong way.

Read from the source with `ast` (every import, also those inside functions and under
TYPE_CHECKING), because ``plugins/`` and ``harvesters/`` install under the ``monalia`` namespace
from folders of their own, which import graph tools that walk one package folder do not see.

Layers, lowest first; a module may import its own layer and those below it:

0. the basics: ``monalia.errors``, ``monalia.version``, ``monalia.jsontext``, ``monalia.hashing``
1. the toolkit's foundations, which the plugin API itself uses: ``monalia.rdf`` (RDF, SPARQL,
   thesauri, the scores graph), ``monalia.learning`` (images and learning) and
   ``monalia.net.url_policy``
2. the plugin API: ``monalia`` (the package's ``__init__``) and ``monalia.api``
3. the toolkit built on the API: ``monalia.formats`` (record formats, the SPARQL source base)
   and ``monalia.net`` (the HTTP client, SPARQL endpoints)
4. the core's foundations: ``monalia.catalog``, ``monalia.project`` and ``monalia.project_toml``
   (the project file), ``monalia.classes``, ``monalia.progress``, and how findings are made
   (``monalia.curation.findings``, ``monalia.curation.confident_learning``)
5. ``monalia.similarity`` (image vectors, their index, near duplicates)
6. ``monalia.executors`` (crawl processes, Ray)
7. ``monalia.stages``
8. ``monalia.curation`` (the curation session, the HTML report, review export: they read what
   the stages made)
9. the entry points: ``monalia.cli``, ``monalia.web`` (the workbench), ``monalia.demo``,
   ``monalia.testing``, ``monalia.harvesters`` (the crawl process), ``monalia.__main__``

The built-in plugins (``monalia.plugins``) import only layers 0 to 3 (the plugin API and the
toolkit) and their own package; nothing outside ``plugins/`` imports a built-in plugin.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"monalia": "monalia", "plugins": "monalia.plugins", "harvesters": "monalia.harvesters"}
LAYERS = {
    "monalia.errors": 0,
    "monalia.version": 0,
    "monalia.jsontext": 0,
    "monalia.hashing": 0,
    "monalia.masking": 0,
    "monalia.curation.problem_kinds": 0,  # names only: the project file checks them
    "monalia.rdf": 1,
    "monalia.learning": 1,
    "monalia.net.url_policy": 1,
    "monalia": 2,
    "monalia.api": 2,
    "monalia.formats": 3,
    "monalia.net": 3,
    "monalia.catalog": 4,
    "monalia.project": 4,
    "monalia.project_toml": 4,
    "monalia.classes": 4,
    "monalia.progress": 4,
    "monalia.curation.findings": 4,
    "monalia.curation.confident_learning": 4,
    "monalia.similarity": 5,
    "monalia.curation.audit": 5,  # the audit's checks and store, which label and audit run
    "monalia.curation.teach": 6,  # taught classes over the vectors, which label takes in
    "monalia.executors": 6,
    "monalia.stages": 7,
    "monalia.curation": 8,
    "monalia.cli": 9,
    "monalia.web": 9,
    "monalia.demo": 9,
    "monalia.testing": 9,
    "monalia.harvesters": 9,
    "monalia.__main__": 9,
}
# What a plugin may import: the plugin API and the toolkit (layers 0 to 3).
PLUGIN_API = tuple(prefix for prefix, layer in LAYERS.items() if layer <= 3)


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
        "monalia.plugins.trainers.cnn.fit",
        "monalia.plugins.sources.iiif",
        "monalia.harvesters.crawl",
    ):
        assert expected in graph, f"{expected} was not found: the contract would not see it"


def plugin_violations(graph: dict[str, set[str]]) -> list[str]:
    """Plugins that import past the plugin API and the toolkit, or another plugin."""
    wrong = []
    for module, imported in graph.items():
        if not module.startswith("monalia.plugins."):
            continue
        own = ".".join(module.split(".")[:4])  # monalia.plugins.KIND.PLUGIN
        for target in imported:
            if target.startswith("monalia.plugins."):
                if not (target == own or target.startswith(own + ".")):
                    wrong.append(f"{module} imports another plugin, {target}")
            elif layer_of(target) not in PLUGIN_API:
                wrong.append(f"{module} imports {target}")
    return sorted(wrong)


def core_on_plugin_violations(graph: dict[str, set[str]]) -> list[str]:
    """Modules outside the plugins that import a built-in plugin."""
    return sorted(
        f"{module} imports {target}"
        for module, imported in graph.items()
        if not module.startswith("monalia.plugins")
        for target in imported
        if target.startswith("monalia.plugins")
    )


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Imports that go up the layers."""
    wrong = []
    for module, imported in graph.items():
        if module.startswith("monalia.plugins"):
            continue
        own = layer_of(module)
        assert own is not None, f"{module} belongs to no layer: add its folder to LAYERS"
        for target in imported:
            if target.startswith("monalia.plugins"):
                continue  # core_on_plugin_violations
            other = layer_of(target)
            if LAYERS[other] > LAYERS[own]:
                wrong.append(f"{module} (layer {own}) imports {target} (layer {other}, above)")
    return sorted(wrong)


def test_plugins_import_only_the_plugin_api_and_the_toolkit(graph):
    wrong = plugin_violations(graph)
    assert not wrong, "plugins reach past the plugin API:\n" + "\n".join(wrong)


def test_nothing_outside_the_plugins_imports_a_built_in_plugin(graph):
    wrong = core_on_plugin_violations(graph)
    assert not wrong, "the core depends on a built-in plugin:\n" + "\n".join(wrong)


def test_every_layer_imports_only_itself_and_the_layers_below(graph):
    wrong = layer_violations(graph)
    assert not wrong, "imports that go up the layers:\n" + "\n".join(wrong)


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


@pytest.mark.parametrize(
    ("planted_as", "source", "check"),
    [
        # the plugin API reaching up into a stage
        (
            "monalia.api.planted",
            "from monalia.stages.enrich import enrich_images\n",
            layer_violations,
        ),
        # the toolkit's foundations importing the API they sit under
        ("monalia.rdf.planted", "from monalia.api.records import Record\n", layer_violations),
        # a plugin reaching into the catalog
        (
            "monalia.plugins.sinks.planted",
            "from monalia.catalog.database import Catalog\n",
            plugin_violations,
        ),
        # the core depending on a built-in plugin
        (
            "monalia.stages.planted",
            "from monalia.plugins.trainers import cnn\n",
            core_on_plugin_violations,
        ),
    ],
)
def test_the_contract_catches_a_violation(graph, tmp_path, planted_as, source, check):
    """Each check fails on a new violation planted beside the real modules (a check that cannot
    fail proves nothing)."""
    assert not check(graph)
    planted = tmp_path / "planted.py"
    planted.write_text(source)
    imported = imports_of(planted_as, planted, set(module_files()))
    found = check({**graph, planted_as: imported})
    assert found and all(line.startswith(planted_as) for line in found), found


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


def test_one_declared_list_of_stages_drives_the_project_file_and_monalia_run():
    """`[pipeline] stages` accepts exactly the declared stages, each has a runner, in order."""
    from typing import get_args

    from monalia.cli.app import stage_runners
    from monalia.project import STAGES, PipelineSection
    from monalia.stages.pipeline import PIPELINE, STAGE_NAMES

    accepted = get_args(get_args(PipelineSection.model_fields["stages"].annotation)[0])
    assert STAGE_NAMES == STAGES == accepted, (STAGE_NAMES, STAGES, accepted)
    runners = stage_runners()
    assert set(runners) == set(STAGE_NAMES), sorted(runners)
    for stage in PIPELINE:
        assert set(stage.needs) <= set(STAGE_NAMES[: STAGE_NAMES.index(stage.name)]), (
            f"{stage.name} needs a stage that does not come before it"
        )


def test_every_command_is_found_by_the_module_the_root_group_imports_for_it():
    """Commands load lazily, by `COMMAND_MODULES`: each command is registered by the module
    the table names, and the table names every command."""
    from monalia.cli import COMMAND_MODULES, load_all_commands

    registered = {
        name: command.callback.__module__ for name, command in load_all_commands().commands.items()
    }
    assert registered == COMMAND_MODULES
