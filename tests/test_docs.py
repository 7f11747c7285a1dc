"""The documentation site builds without a warning, its reference pages hold every command and
every setting the code has, and the plugin tutorial's package works as the page shows."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from support.packages import install_into

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "examples" / "plugin-tutorial"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built as `mkdocs build --strict` builds it (a warning fails the build)."""
    out = tmp_path_factory.mktemp("site")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert built.returncode == 0, "mkdocs build --strict failed:\n" + built.stderr[-4000:]
    return out


def page_text(site: Path, page: str) -> str:
    """A built page's article as plain text."""
    document = (site / page / "index.html").read_text(encoding="utf-8")
    article = document[document.index("<article") : document.index("</article>")]
    text = html.unescape(re.sub(r"<[^>]+>", " ", article))
    return re.sub(r"\s+", " ", text)


def command_paths(group: click.Group, prefix: str = "monalia") -> list[str]:
    paths = []
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        path = f"{prefix} {name}"
        paths.append(path)
        if isinstance(command, click.Group):
            paths.extend(command_paths(command, path))
    return paths


def test_every_command_and_option_is_in_the_cli_reference(site):
    from monalia.cli import cli

    text = page_text(site, "reference/cli")
    paths = command_paths(cli)
    assert len(paths) > 30, paths
    missing = [path for path in paths if path not in text]
    assert not missing, f"commands missing from the CLI reference: {missing}"
    context = click.Context(cli)
    for name in ("harvest", "enrich", "serve"):
        for param in cli.get_command(context, name).params:
            for option in getattr(param, "opts", []):
                if option.startswith("--"):
                    assert option in text, f"`monalia {name} {option}` is not in the reference"


def setting_keys(model, prefix: str = "") -> list[str]:
    """Every key of a settings model, nested tables as dotted keys (read from the model)."""
    from pydantic import BaseModel

    keys = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        key = prefix + (field.alias or name)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(setting_keys(annotation, key + "."))
        else:
            keys.append(key)
    return keys


def test_every_project_file_setting_is_in_the_settings_reference(site):
    from pydantic import BaseModel

    from monalia.project import ProjectFile

    text = page_text(site, "reference/settings")
    checked = 0
    for table, field in ProjectFile.model_fields.items():
        model = field.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            assert f"[{table}]" in text, f"[{table}] is not named in the settings reference"
            continue
        section = text[text.index(f"[{table}]") :]
        for key in setting_keys(model):
            assert key in section, f"[{table}] {key} is not in the settings reference"
            checked += 1
    assert checked > 50  # the walk found the tables (79 keys when this was written)


def test_every_plugin_setting_is_in_the_plugin_settings_reference(site):
    from monalia.api.registry import default_registry

    text = page_text(site, "reference/plugin-settings")
    registry = default_registry()
    plugins = registry.all()
    assert len(plugins) >= 20
    for info in plugins:
        heading = f"{info.kind} {info.name}"
        assert heading in text, f"{heading} has no section in the plugin settings reference"
        settings = getattr(info.cls, "Settings", None)
        if settings is None:
            continue
        section = text[text.index(heading) :]
        for key in setting_keys(settings):
            assert key in section, f"{heading}: {key} is not in the plugin settings reference"


def test_the_vocabulary_and_shapes_pages_hold_every_term_and_shape(site):
    import rdflib
    from rdflib.namespace import RDF, RDFS, SH

    vocabulary = rdflib.Graph().parse(ROOT / "ontology" / "monalia.ttl", format="turtle")
    text = page_text(site, "reference/vocabulary")
    ml = "http://ns.inria.fr/monalia/"
    terms = {
        str(s)
        for kind in (RDFS.Class, RDF.Property)
        for s in vocabulary.subjects(RDF.type, kind)
        if str(s).startswith(ml)
    }
    assert len(terms) > 20
    missing = [term for term in terms if "ml:" + term[len(ml) :] not in text]
    assert not missing, f"terms missing from the vocabulary page: {missing}"
    shapes = rdflib.Graph().parse(ROOT / "ontology" / "shapes.ttl", format="turtle")
    text = page_text(site, "reference/shapes")
    for shape in shapes.subjects(RDF.type, SH.NodeShape):
        assert "mls:" + str(shape).rsplit("/", 1)[1] in text, f"{shape} is not on the shapes page"


def test_every_page_is_in_the_navigation_and_every_hook_documented(site):
    from monalia.api.hookspecs import all_hookspec_names

    pages = {str(path.relative_to(ROOT / "docs")) for path in (ROOT / "docs").rglob("*.md")}
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    missing = sorted(page for page in pages if page not in nav)
    assert not missing, f"pages not in the nav of mkdocs.yml: {missing}"
    api = page_text(site, "reference/plugin-api")
    for hook in all_hookspec_names():
        assert hook in api, f"hook {hook} is not in the plugin API reference"


def test_the_plugin_tutorials_package_installs_lists_and_harvests(tmp_path):
    """What the tutorial page shows, done: install the package, list it, harvest with it, and
    run its own contract test."""
    package = tmp_path / "plugin-tutorial"
    shutil.copytree(TUTORIAL, package)
    site_dir = tmp_path / "site"
    install_into(site_dir, package)
    # a fresh process that finds the package where it was installed, and no MONALIA_* settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONALIA_")}
    env["PYTHONPATH"] = str(site_dir)
    monalia = [sys.executable, "-m", "monalia"]
    listed = subprocess.run(
        [*monalia, "plugins", "--kind", "source"],
        cwd=package,
        env=env,
        capture_output=True,
        text=True,
    )
    assert listed.returncode == 0, listed.stderr
    assert "tutorial-museum" in listed.stdout and "monalia-tutorial-museum" in listed.stdout

    harvested = subprocess.run(
        [*monalia, "-q", "harvest"], cwd=package, env=env, capture_output=True, text=True
    )
    output = harvested.stdout + harvested.stderr
    assert harvested.returncode == 0, output
    assert "an object without an inventory number" in output
    row = next(line for line in output.splitlines() if "tutorial-museum" in line)
    cells = [cell.strip() for cell in row.split("│")]
    assert cells[4:9] == ["4", "3", "0", "0", "1"], row  # seen, new, changed, unchanged, failed

    tested = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(package),
            str(package / "test_tutorial_museum.py"),
        ],
        cwd=package,
        env=env,
        capture_output=True,
        text=True,
    )
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-2000:]


def test_every_setting_says_what_it_means():
    """A setting's meaning is the comment beside its field: a field without one would show a
    blank line in the generated reference."""
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import hooks
    finally:
        sys.path.remove(str(ROOT / "docs"))
    from monalia.api.registry import default_registry

    models = [(f"[{name}]", model) for name, model in hooks.project_tables()]
    for info in default_registry().all():
        settings = getattr(info.cls, "Settings", None)
        if settings is not None:
            models.append((f"{info.kind} {info.name}", settings))
    blank = [
        f"{where} {key}"
        for where, model in models
        for key, _, _, meaning in hooks.model_rows(model)
        if not meaning
    ]
    assert not blank, "settings with no comment beside their field: " + ", ".join(blank)
