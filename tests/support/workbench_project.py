"""A drawn project trained and enriched once per session, copied into each workbench test.

Its catalog URL is relative to the project folder, so a copy of the folder is a whole project.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from support.drawn_catalog import build_project

SINKS = """
[sinks.store]
plugin = "embedded-store"
path = "store"

[sinks.files]
plugin = "turtle"
path = "out/{graph}.ttl"

[enrich]
records = true
workers = 0
batch_size = 16

[report]
method = "threshold"
"""


def run(*args: str, project: Path):
    from monalia.cli import cli as command

    result = CliRunner().invoke(
        command, ["--project", str(project), "-q", *args], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result


def build_trained(folder: Path) -> Path:
    """Harvest, label, train (two short epochs) and enrich a drawn collection in `folder`."""
    url = f"sqlite:///{folder / 'catalog.sqlite'}"
    build_project(
        folder, url, lambda *a, project: run(*a, project=project), count=80, extra=SINKS, epochs=2
    )
    run("train", project=folder)
    run("enrich", project=folder)
    project_file = folder / "monalia.toml"
    text = project_file.read_text(encoding="utf-8")
    project_file.write_text(text.replace(url, "sqlite:///catalog.sqlite"), encoding="utf-8")
    return folder


def copy_project(template: Path, target: Path) -> Path:
    shutil.copytree(template, target, dirs_exist_ok=True)
    return target
