"""Edges a user hits: pipes, option order, empty and incomplete projects, one-line errors that
name what failed, files left behind, progress labels."""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from conftest import run_monalia, write_jsonl
from sqlalchemy import insert

from monalia.catalog.database import Catalog
from monalia.catalog.models import RunRow, utcnow


def test_output_cut_short_by_head_ends_quietly(tmp_path):
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    now = utcnow()
    with catalog.session() as session:
        session.execute(
            insert(RunRow),
            [
                {
                    "stage": "harvest",
                    "target": f"source-{n}",
                    "settings": {},
                    "status": "done",
                    "started_at": now,
                    "ended_at": now + timedelta(seconds=1),
                    "heartbeat_at": now,
                    "host": "h",
                    "pid": 1,
                    **dict.fromkeys(("seen", "new", "changed", "unchanged", "failed"), 0),
                }
                for n in range(3000)
            ],
        )
    (tmp_path / "monalia.toml").write_text(
        f'[project]\ncatalog = "sqlite:///{tmp_path / "c.sqlite"}"\n', encoding="utf-8"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONALIA_")}
    piped = subprocess.run(
        f"{sys.executable} -m monalia --project {tmp_path} runs -n 3000 | head -n 2",
        shell=True,
        capture_output=True,
        text=True,
        env=env,
    )
    assert "BrokenPipe" not in piped.stderr and "Error" not in piped.stderr, piped.stderr
    assert len(piped.stdout.splitlines()) == 2


def test_global_options_work_after_the_command(tmp_path):
    write_jsonl(tmp_path / "r.jsonl", [{"id": "a", "title": "A"}])
    (tmp_path / "monalia.toml").write_text(
        f'[project]\ncatalog = "sqlite:///{tmp_path / "c.sqlite"}"\n'
        '[sources.s]\nplugin = "jsonl"\npath = "r.jsonl"\n',
        encoding="utf-8",
    )
    after = run_monalia("harvest", "--project", str(tmp_path), "-q", cwd=tmp_path.parent)
    assert after.returncode == 0, after.stderr
    shown = run_monalia("runs", "-q", f"--project={tmp_path}", cwd=tmp_path.parent)
    assert shown.returncode == 0 and "harvest" in shown.stdout


def test_init_makes_the_folder_it_is_given(tmp_path):
    made = run_monalia("init", "collection/project", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "collection" / "project" / "monalia.toml").is_file()


def test_check_reports_an_empty_project_and_missing_input_files(tmp_path):
    (tmp_path / "monalia.toml").write_text("", encoding="utf-8")
    empty = run_monalia("--project", str(tmp_path), "check", cwd=tmp_path)
    assert empty.returncode != 0
    assert "is empty" in empty.stderr and "nothing to harvest" in empty.stderr
    (tmp_path / "monalia.toml").write_text(
        f'[project]\ncatalog = "sqlite:///{tmp_path / "c.sqlite"}"\n'
        '[sources.paintings]\nplugin = "jsonl"\npath = "paintings.jsonl"\n',
        encoding="utf-8",
    )
    missing = run_monalia("--project", str(tmp_path), "check", cwd=tmp_path)
    assert missing.returncode != 0
    assert f"source paintings: path {tmp_path / 'paintings.jsonl'} does not exist" in missing.stderr
    write_jsonl(tmp_path / "paintings.jsonl", [{"id": "a"}])
    assert run_monalia("--project", str(tmp_path), "check", cwd=tmp_path).returncode == 0


def test_errors_name_the_catalog_the_sink_and_the_file(tmp_path):
    write_jsonl(tmp_path / "r.jsonl", [{"id": "a", "title": "A"}])
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder is expected", encoding="utf-8")
    (tmp_path / "monalia.toml").write_text(
        f'[project]\ncatalog = "sqlite:///{blocked / "c.sqlite"}"\n'
        '[sources.s]\nplugin = "jsonl"\npath = "r.jsonl"\n',
        encoding="utf-8",
    )
    result = run_monalia("--project", str(tmp_path), "harvest", cwd=tmp_path)
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: cannot open catalog") and str(blocked) in line
    (tmp_path / "monalia.toml").write_text(
        f'[project]\ncatalog = "sqlite:///{tmp_path / "c.sqlite"}"\n'
        '[sources.s]\nplugin = "jsonl"\npath = "r.jsonl"\n'
        f'[sinks.archive]\nplugin = "turtle"\npath = "{blocked / "out.ttl"}"\n',
        encoding="utf-8",
    )
    assert run_monalia("--project", str(tmp_path), "harvest", cwd=tmp_path).returncode == 0
    published = run_monalia("--project", str(tmp_path), "publish", cwd=tmp_path)
    line = published.stderr.strip().splitlines()[-1]
    assert line.startswith("Error: sink archive") and str(blocked) in line


def test_a_turtle_syntax_error_is_one_line_with_its_line_number(tmp_path):
    (tmp_path / "bad.ttl").write_text(
        '@prefix ex: <http://example.org/> .\nex:a ex:b ex:c .\nex:d ex:e "unterminated .\n',
        encoding="utf-8",
    )
    (tmp_path / "monalia.toml").write_text(
        f'[project]\ncatalog = "sqlite:///{tmp_path / "c.sqlite"}"\n'
        '[sources.lod]\nplugin = "rdf-file"\npath = "bad.ttl"\n',
        encoding="utf-8",
    )
    result = run_monalia("--project", str(tmp_path), "-q", "harvest", cwd=tmp_path)
    [line] = result.stderr.strip().splitlines()
    assert "is not valid turtle: line 3: newline found in string literal" in line


def test_a_byte_order_mark_does_not_fail_the_first_json_line(tmp_path):
    from monalia.plugins.sources.jsonl import JsonLinesSource
    from monalia.stages.harvest import harvest
    from monalia.testing import configure

    (tmp_path / "r.jsonl").write_bytes(
        '\ufeff{"id": "a", "title": "A"}\n{"id": "b", "title": x}\n'.encode()
    )
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    run = harvest(catalog, configure(JsonLinesSource, {"path": "r.jsonl"}, tmp_path, "s"))
    assert (run.counts["new"], run.counts["failed"]) == (1, 1)
    from monalia.catalog.models import RunEventRow

    with catalog.session() as session:
        [event] = session.query(RunEventRow).all()
    # `{"id": "b", "title": ` is 21 characters: the x is at column 22
    assert event.item == "line 2" and event.message.endswith("at column 22")


def test_a_turtle_file_that_cannot_be_finished_leaves_no_partial_file(tmp_path):
    from monalia.api.plugin import PluginContext
    from monalia.plugins.sinks.turtle import TurtleSink
    from monalia.rdf.terms import Triple  # noqa: F401 - the type the sink writes

    sink = TurtleSink(
        TurtleSink.Settings(path="out/{graph}.ttl"),
        PluginContext(instance="files", project_dir=tmp_path),
    )
    sink.open()
    sink.begin_graph("urn:g:1")
    sink.begin_graph("urn:g:2")
    [(_, handle, _), _] = sink._files.values()

    def full_disk():
        raise OSError(errno.ENOSPC, "No space left on device")

    handle.close = full_disk
    with pytest.raises(OSError, match="No space left on device"):
        sink.close(ok=True)
    assert not list((tmp_path / "out").glob(".*.partial")), "a partial file was left behind"
    assert not list((tmp_path / "out").glob("*.ttl"))  # nothing half-written in place either


def test_the_progress_bar_labels_elapsed_and_remaining_time(monkeypatch):
    from monalia.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    with Progress("harvest s", total=100, unit="records", stream=screen) as progress:
        progress.advance(40)
    text = screen.getvalue()
    assert "elapsed," in text and "left" in text
    assert text.index("elapsed,") < text.rindex("left")
