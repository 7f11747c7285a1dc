"""MkDocs hooks: the reference pages that are generated from the code when the site is built.

A page asks for a generated part with a marker on a line of its own:

- ``<!-- generated: settings -->``: every table of the project file, from its settings models
- ``<!-- generated: plugin-settings -->``: every installed plugin's settings, from its model
- ``<!-- generated: vocabulary -->``: the ``ml:`` classes and properties of ``ontology/monalia.ttl``
- ``<!-- generated: shapes -->``: the SHACL shapes of ``ontology/shapes.ttl``
- ``<!-- generated: stages -->``: the pipeline's stages, as ``monalia.stages.pipeline`` declares them

What a setting means is the comment written beside (or above) its field in the model, so the
model stays the one place a setting is described. ``tests/test_docs.py`` builds the site and
checks that every setting and every command appears.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.M)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace each marker with its generated Markdown."""
    return MARKER.sub(lambda match: GENERATORS[match.group(1)](), markdown)


# -- settings ----------------------------------------------------------------------------------


def field_comments(model: type) -> dict[str, str]:
    """The comment of each field of a pydantic model: the lines just above it and the one at the
    end of its line (the source is read, the model is not changed)."""
    try:
        lines, _ = inspect.getsourcelines(model)
    except (OSError, TypeError):
        return {}
    source = textwrap.dedent("".join(lines))
    source_lines = source.splitlines()
    tree = ast.parse(source)
    comments: dict[str, str] = {}
    for node in tree.body[0].body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above = []
        row = node.lineno - 2
        while row >= 0 and source_lines[row].strip().startswith("#"):
            above.insert(0, source_lines[row].strip().lstrip("#").strip())
            row -= 1
        trailing = [
            line.split("  # ", 1)[1].strip()
            for line in source_lines[node.lineno - 1 : node.end_lineno]
            if "  # " in line
        ]
        comments[node.target.id] = " ".join(part for part in (*above, *trailing) if part)
    return comments


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    text = text or str(annotation)
    text = re.sub(r"\b(typing|pathlib|collections\.abc)\.", "", text)
    # a pipe cannot be escaped inside a code span in a table cell: say "or"
    return text.replace("NoneType", "None").replace(" | ", " or ")


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        try:
            value = field.default_factory()
        except TypeError:
            return "(computed)"
    else:
        value = field.default
    if hasattr(value, "model_dump"):
        return "(table)"
    return f"`{value!r}`"


def _nested_model(annotation: Any) -> type | None:
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def model_rows(model: type, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(key, type, default, meaning) for every field of `model`, nested tables flattened with
    dotted keys."""
    comments = {}
    for klass in reversed(model.__mro__):
        if hasattr(klass, "model_fields"):
            comments.update(field_comments(klass))
    rows = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        nested = _nested_model(field.annotation)
        meaning = comments.get(name, "") or (field.description or "")
        if nested is not None:
            rows.extend(model_rows(nested, key + "."))
            continue
        rows.append((key, _type_name(field.annotation), _default(field), meaning))
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _table(rows: list[tuple[str, str, str, str]]) -> str:
    out = ["| setting | type | default | meaning |", "|---|---|---|---|"]
    for key, kind, default, meaning in rows:
        out.append(f"| `{key}` | `{_cell(kind)}` | {_cell(default)} | {_cell(meaning)} |")
    return "\n".join(out)


def project_tables() -> list[tuple[str, type]]:
    """The project file's tables that have a settings model of their own, in file order."""
    from typing import get_args, get_origin

    from monalia.project import PluginSection, ProjectFile

    tables = []
    for name, field in ProjectFile.model_fields.items():
        model = _nested_model(field.annotation)
        if model is not None:
            tables.append((name, model))
        elif get_origin(field.annotation) is dict:  # a table per name: [tasks.NAME]
            value = _nested_model(get_args(field.annotation)[1])
            if value is not None and value is not PluginSection:
                tables.append((f"{name}.NAME", value))
    return tables


def settings_reference() -> str:
    from monalia.project import ProjectFile

    parts = []
    for name, model in project_tables():
        doc = inspect.cleandoc(model.__dict__.get("__doc__") or "")  # its own, not BaseModel's
        parts.append(f"## `[{name}]`\n\n{doc}\n\n{_table(model_rows(model))}\n")
    named = {name.split(".")[0] for name, _ in project_tables()}
    plugin_tables = [
        name
        for name, field in ProjectFile.model_fields.items()
        if _nested_model(field.annotation) is None and name not in named
    ]
    parts.append(
        "## Plugin tables\n\n"
        + ", ".join(f"`[{name}]`" for name in plugin_tables)
        + ' name a plugin (`plugin = "..."`, a table per instance under `[sources.NAME]` and '
        "`[sinks.NAME]`); every other key is one of that plugin's settings, listed in "
        "[Plugin settings](plugin-settings.md).\n"
    )
    return "\n".join(parts)


def plugin_settings_reference() -> str:
    from monalia.api.registry import default_registry

    registry = default_registry()
    parts = []
    for kind in ("source", "metadata-format", "labeler", "trainer", "sink"):
        for info in sorted(registry.all(kind), key=lambda info: info.name):
            own = info.cls.__dict__.get("__doc__") or ""
            summary = inspect.cleandoc(own).split("\n\n")[0].replace("\n", " ")
            settings = getattr(info.cls, "Settings", None)
            body = (
                _table(model_rows(settings))
                if settings is not None and settings.model_fields
                else "No settings."
            )
            parts.append(
                f"## {kind} `{info.name}`\n\n{summary}\n\n"
                f"From `{info.origin.package}` ({info.cls.__module__}).\n\n{body}\n"
            )
    return "\n".join(parts)


# -- the RDF vocabulary and its shapes -----------------------------------------------------------


def _graph(name: str):
    import rdflib

    graph = rdflib.Graph()
    graph.parse(ROOT / "ontology" / name, format="turtle")
    return graph


def _short(graph: Any, term: Any) -> str:
    import rdflib

    if isinstance(term, rdflib.BNode):
        return "(a path)"
    try:
        return graph.namespace_manager.normalizeUri(term)
    except Exception:
        return f"<{term}>"


def vocabulary_reference() -> str:
    from rdflib import RDF, RDFS
    from rdflib.namespace import OWL

    graph = _graph("monalia.ttl")

    def english(subject: Any, predicate: Any) -> str:
        values = list(graph.objects(subject, predicate))
        chosen = [v for v in values if getattr(v, "language", None) in ("en", None)] or values
        return str(chosen[0]) if chosen else ""

    parts = []
    for title, kinds in (
        ("Classes", (RDFS.Class, OWL.Class)),
        ("Properties", (RDF.Property, OWL.ObjectProperty, OWL.DatatypeProperty)),
    ):
        terms = sorted({s for kind in kinds for s in graph.subjects(RDF.type, kind)}, key=str)
        rows = ["| term | label | meaning | domain | range |", "|---|---|---|---|---|"]
        for term in terms:
            domain = ", ".join(_short(graph, d) for d in graph.objects(term, RDFS.domain))
            range_ = ", ".join(_short(graph, r) for r in graph.objects(term, RDFS.range))
            rows.append(
                f"| `{_short(graph, term)}` | {english(term, RDFS.label)} | "
                f"{english(term, RDFS.comment)} | {domain} | {range_} |"
            )
        parts.append(f"## {title}\n\n" + "\n".join(rows) + "\n")
    return "\n".join(parts)


def shapes_reference() -> str:
    from rdflib import RDF, RDFS, Namespace, URIRef

    sh = Namespace("http://www.w3.org/ns/shacl#")
    graph = _graph("shapes.ttl")
    parts = []
    for shape in sorted(graph.subjects(RDF.type, sh.NodeShape), key=str):
        comment = graph.value(shape, RDFS.comment) or ""
        targets = [
            f"{_short(graph, p).split(':')[1]} {_short(graph, o)}"
            for p, o in graph.predicate_objects(shape)
            if str(p).startswith(str(sh) + "target")
        ]
        rows = ["| path | constraints |", "|---|---|"]
        for prop in graph.objects(shape, sh.property):
            path = graph.value(prop, sh.path)
            if path is not None and (path, RDF.first, None) in graph:
                path_text = " / ".join(_short(graph, step) for step in graph.items(path))
            else:
                path_text = _short(graph, path)
            constraints = ", ".join(
                f"{_short(graph, p).split(':')[1]} "
                # literals (patterns, bounds) as code too: `[0-9]` is no link
                + (f"`{_short(graph, o)}`" if isinstance(o, URIRef) else f"`{o}`")
                for p, o in sorted(graph.predicate_objects(prop), key=lambda po: str(po[0]))
                if p != sh.path
            )
            rows.append(f"| `{path_text}` | {constraints.replace('|', '/')} |")
        target_text = f" Targets: {', '.join(targets)}." if targets else ""
        parts.append(
            f"## `{_short(graph, shape)}`\n\n{comment}{target_text}\n\n" + "\n".join(rows) + "\n"
        )
    return "\n".join(parts)


def stages_reference() -> str:
    from monalia.stages.pipeline import PIPELINE

    rows = ["| stage | command | needs | reads | makes |", "|---|---|---|---|---|"]
    for stage in PIPELINE:
        needs = ", ".join(stage.needs) or "nothing"
        rows.append(
            f"| {stage.name} | `{stage.command}` | {needs} | {stage.reads} | {stage.makes} |"
        )
    return "\n".join(rows) + "\n"


GENERATORS = {
    "settings": settings_reference,
    "plugin-settings": plugin_settings_reference,
    "vocabulary": vocabulary_reference,
    "shapes": shapes_reference,
    "stages": stages_reference,
}
