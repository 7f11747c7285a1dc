"""Commands a user waits on at the terminal import only what they use.

Not a timing test: each command runs in a fresh interpreter under ``python -X importtime`` and
the modules it imported are compared with those it must not need. An import that creeps back
into a module everything loads (a plugin module, the project file, the catalog) shows here as
the name of the module that pulled it in.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from test_curation import MODEL, build

# what none of these commands needs: each costs from tens to hundreds of milliseconds to import
HEAVY = {
    "alembic",
    "jinja2",
    "matplotlib",
    "numpy",
    "PIL",
    "ray",
    "rdflib",
    "requests",
    "rich",
    "scrapy",
    "sickle",
    "sklearn",
    "sqlalchemy",
    "timm",
    "torch",
    "torchvision",
    "twisted",
    "urllib3",
}


def cold_run(*args: str, cwd) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    """`monalia ARGS` in a fresh interpreter; the top-level packages it imported, each with the
    module that imported it first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONALIA_")}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "from monalia.cli import main; main()", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    rows = []  # (depth, module) in the order importtime prints them: children before parents
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            name = line.split("|")[2]
            rows.append(((len(name) - len(name.lstrip())) // 2, name.strip()))
    imported: dict[str, str] = {}
    for index, (depth, module) in enumerate(rows):
        parent = next((m for d, m in rows[index + 1 :] if d < depth), "the command")
        package = module.split(".")[0]
        if package != parent.split(".")[0]:  # where the package was entered from
            imported.setdefault(package, parent)
    return done, imported


def modules_of(done: subprocess.CompletedProcess) -> list[str]:
    """Every module a cold run imported, by `-X importtime`."""
    return [
        line.split("|")[2].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line and "cumulative" not in line
    ]


def command_modules(done: subprocess.CompletedProcess) -> set[str]:
    """The command modules (monalia.cli.*) a cold run imported, besides the root's."""
    root = {"monalia.cli", "monalia.cli.app"}
    return {m for m in modules_of(done) if m.startswith("monalia.cli.") and m not in root}


def heavy_in(imported: dict[str, str]) -> dict[str, str]:
    return {name: by for name, by in imported.items() if name in HEAVY}


def test_help_and_plugins_import_nothing_heavy(tmp_path):
    done, imported = cold_run("--help", cwd=tmp_path)
    assert done.returncode == 0 and "harvest" in done.stdout
    assert heavy_in(imported) == {}
    assert "pydantic" not in imported and "pyoxigraph" not in imported

    for _ in range(2):  # the first run writes the plugin manifest, the second reads it
        done, imported = cold_run("plugins", cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        for name in ("europeana", "oai-pmh", "sql", "cnn", "linear-probe", "embedded-store"):
            assert name in done.stdout
        assert heavy_in(imported) == {}
    # read from the manifest: no plugin module, no settings model, no other command's module
    assert not [m for m in modules_of(done) if m.startswith("monalia.plugins.")]
    assert "pydantic" not in imported
    assert command_modules(done) == {"monalia.cli.plugins"}


def test_search_reports_and_runs_read_the_catalog_without_sqlalchemy(tmp_path, catalog_url, cli):
    build(tmp_path, catalog_url, cli)
    project = ["--project", str(tmp_path)]

    done, imported = cold_run(*project, "search", "cheval", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "horse-missing" in done.stdout and MODEL in done.stderr
    assert heavy_in(imported) == {}
    assert command_modules(done) == {"monalia.cli.search", "monalia.cli.report"}

    for kind, planted in (("noise", "horse-uri-low"), ("silence", "horse-missing")):
        done, imported = cold_run(*project, "report", kind, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        assert planted in done.stdout
        assert heavy_in(imported) == {}
        assert command_modules(done) == {"monalia.cli.report"}
        # the project's default trainer is loaded when used: a report does not train
        assert not [m for m in modules_of(done) if m.startswith("monalia.plugins.trainers")]

    done, imported = cold_run(*project, "runs", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "harvest" in done.stdout and "jsonl" in done.stdout
    assert heavy_in(imported) == {} and "pydantic" not in imported


@pytest.mark.parametrize("revision", ["0004", None])
def test_a_catalog_not_at_head_still_gets_its_clear_answer(tmp_path, sqlite_url, cli, revision):
    """The quick reader leaves an older (or foreign) catalog to the catalog's own checks."""
    import sqlite3

    build(tmp_path, sqlite_url, cli)
    with sqlite3.connect(tmp_path / "catalog.sqlite") as connection:
        if revision is None:
            connection.execute("DROP TABLE alembic_version")
        else:
            connection.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    for args in (["runs"], ["search", "cheval"]):
        done, _ = cold_run("--project", str(tmp_path), *args, cwd=tmp_path)
        assert done.returncode != 0
        message = done.stderr.strip().splitlines()[-1]
        if revision is None:
            assert "not a monalia catalog" in message
        else:
            assert "schema revision 0004" in message and "monalia db upgrade" in message


def test_a_run_left_running_is_marked_interrupted_by_runs(tmp_path, sqlite_url, cli):
    import sqlite3

    build(tmp_path, sqlite_url, cli)
    with sqlite3.connect(tmp_path / "catalog.sqlite") as connection:
        # a process id that cannot be alive: the run's process is gone
        connection.execute("UPDATE runs SET status = 'running', ended_at = NULL, pid = 999999999")
    done, _ = cold_run("--project", str(tmp_path), "runs", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "interrupted" in done.stdout and "running" not in done.stdout


def test_a_harvest_into_a_new_catalog_imports_its_source_and_no_other_plugin(tmp_path):
    """A first harvest makes its SQLite catalog without Alembic, and loads the source it reads
    and the packages that observe stages (none here): no trainer, sink or other source."""
    (tmp_path / "data.csv").write_text(
        "id,title,type,image_web\n1,A horse,Painting,https://example.org/1.jpg\n", encoding="utf-8"
    )
    (tmp_path / "monalia.toml").write_text(
        '[project]\ncatalog = "sqlite:///catalog.sqlite"\n\n'
        '[sources.csv]\nplugin = "cleveland-csv"\npath = "data.csv"\n',
        encoding="utf-8",
    )
    for _ in range(2):  # the first run may write the plugin manifest; the second reads it
        (tmp_path / "catalog.sqlite").unlink(missing_ok=True)
        done, imported = cold_run("-q", "harvest", cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "done" in done.stdout
    assert "alembic" not in imported and "numpy" not in imported
    plugins = {m for m in modules_of(done) if m.startswith("monalia.plugins.")}
    assert plugins <= {"monalia.plugins.sources", "monalia.plugins.sources.cleveland"}, plugins
