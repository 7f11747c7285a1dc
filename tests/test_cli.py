"""The command line: fast help, one clear line for every user mistake, nothing written then."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import run_monalia
from sqlalchemy import text

from monalia.catalog.database import Catalog
from monalia.catalog.schema import SCHEMA_HEAD


def monalia(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_monalia(*args, cwd=cwd)


def assert_one_line_error(result: subprocess.CompletedProcess, expected: str) -> None:
    assert result.returncode != 0, f"expected failure, got exit 0: {result.stdout}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got: {result.stderr}"
    assert "Traceback" not in result.stderr
    assert expected in lines[0], lines[0]


def test_help_imports_no_heavy_library(tmp_path):
    probe = (
        "import sys, monalia.cli\n"
        "from click.testing import CliRunner\n"
        "CliRunner().invoke(monalia.cli.cli, ['--help'])\n"
        "heavy = [m for m in ('sqlalchemy', 'rdflib', 'pydantic', 'alembic', 'torch', 'scrapy', 'rich') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]", f"--help imported {result.stdout.strip()}"


def test_every_command_has_help(tmp_path):
    for command in ("init", "check", "plugins", "db", "harvest", "publish", "run", "runs"):
        result = monalia(command, "--help", cwd=tmp_path)
        assert result.returncode == 0 and "Usage:" in result.stdout, command


def test_no_project_file_is_one_line(tmp_path):
    assert_one_line_error(monalia("harvest", cwd=tmp_path), "no monalia.toml in")


def test_malformed_project_file_is_one_line_and_writes_nothing(tmp_path):
    (tmp_path / "monalia.toml").write_text(
        '[project]\ncatalog = "sqlite:///c.sqlite"\n[sources.a]\nplugin = "jsonl"\npath = "x.jsonl"\nlimit = "ten"\n'
    )
    assert_one_line_error(monalia("harvest", cwd=tmp_path), "line 6: sources.a.limit: unknown key")
    assert not (tmp_path / "c.sqlite").exists(), "a catalog was created for a bad project file"


def test_unknown_plugin_is_one_line_and_writes_nothing(tmp_path):
    (tmp_path / "monalia.toml").write_text(
        '[project]\ncatalog = "sqlite:///c.sqlite"\n[sinks.s]\nplugin = "fuseki-x"\n'
    )
    assert_one_line_error(monalia("publish", cwd=tmp_path), "unknown sink plugin 'fuseki-x'")
    assert not (tmp_path / "c.sqlite").exists()


def test_catalog_from_a_newer_schema_is_one_line_and_left_alone(tmp_path):
    (tmp_path / "records.jsonl").write_text('{"id": "a"}\n')
    (tmp_path / "monalia.toml").write_text(
        '[project]\ncatalog = "sqlite:///c.sqlite"\n[sources.a]\nplugin = "jsonl"\npath = "records.jsonl"\n'
    )
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    with catalog.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    catalog.close()
    before = (tmp_path / "c.sqlite").read_bytes()
    assert_one_line_error(monalia("harvest", cwd=tmp_path), "written by a newer monalia")
    assert_one_line_error(monalia("db", "upgrade", cwd=tmp_path), "written by a newer monalia")
    catalog = Catalog.connect(f"sqlite:///{tmp_path / 'c.sqlite'}")
    with catalog.engine.connect() as connection:
        assert connection.execute(text("select count(*) from runs")).scalar() == 0
        assert (
            connection.execute(text("select version_num from alembic_version")).scalar() == "ffff"
        )
    assert len(before) > 0


def test_old_catalog_is_upgraded_by_db_upgrade(tmp_path):
    (tmp_path / "monalia.toml").write_text('[project]\ncatalog = "sqlite:///c.sqlite"\n')
    Catalog.connect(f"sqlite:///{tmp_path / 'c.sqlite'}").upgrade("0001")
    assert_one_line_error(monalia("runs", cwd=tmp_path), "run `monalia db upgrade`")
    upgraded = monalia("db", "upgrade", cwd=tmp_path)
    assert upgraded.returncode == 0 and f"0001 -> {SCHEMA_HEAD}" in upgraded.stdout, (
        upgraded.stdout + upgraded.stderr
    )
    assert monalia("runs", cwd=tmp_path).returncode == 0


def test_unknown_source_name_on_the_command_line(tmp_path):
    (tmp_path / "monalia.toml").write_text(
        '[project]\ncatalog = "sqlite:///c.sqlite"\n[sources.a]\nplugin = "jsonl"\npath = "r.jsonl"\n'
    )
    assert_one_line_error(monalia("harvest", "b", cwd=tmp_path), "no source named 'b'")


def test_missing_input_file_fails_the_run_with_one_line(tmp_path):
    (tmp_path / "monalia.toml").write_text(
        '[project]\ncatalog = "sqlite:///c.sqlite"\n[sources.a]\nplugin = "jsonl"\npath = "absent.jsonl"\n'
    )
    assert_one_line_error(monalia("-q", "harvest", cwd=tmp_path), "no such file")
    runs = monalia("runs", cwd=tmp_path)
    assert "failed" in runs.stdout


def test_init_writes_a_valid_starter_and_refuses_to_overwrite(tmp_path):
    created = monalia("init", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert "[sources.local]" in (tmp_path / "monalia.toml").read_text()
    (tmp_path / "records.jsonl").write_text('{"id": "x", "title": "X"}\n')
    assert monalia("check", cwd=tmp_path).returncode == 0
    assert_one_line_error(monalia("init", cwd=tmp_path), "already exists")


def test_run_chains_harvest_and_publish(tmp_path):
    (tmp_path / "r.jsonl").write_text('{"id": "x", "title": "X"}\n')
    (tmp_path / "monalia.toml").write_text(
        '[project]\ncatalog = "sqlite:///c.sqlite"\n[sources.a]\nplugin = "jsonl"\npath = "r.jsonl"\n'
        '[sinks.f]\nplugin = "turtle"\npath = "out.ttl"\n'
    )
    result = monalia("-q", "run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "harvest" not in result.stderr
    assert (tmp_path / "out.ttl").read_text().count("ml:Record") == 1
