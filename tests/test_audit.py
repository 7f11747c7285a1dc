"""`monalia audit` on real icons with problem images planted among them: what it finds, what it
counts, what it says, and `monalia label` leaving the chosen problems out."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from support.problem_images import plant_problems, write_project

pytest.importorskip("cleanvision", reason="the train extra is not installed")

ICONS = Path(__file__).parent / "fixtures" / "images" / "byzart_icons"


def monalia(folder: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "monalia", *args], cwd=folder, capture_output=True, text=True
    )
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def audited(tmp_path_factory) -> tuple[Path, dict[str, tuple[str, str]]]:
    root = tmp_path_factory.mktemp("audit")
    planted = plant_problems(ICONS, root / "images", share=0.1, seed=1)
    folder = root / "project"
    write_project(folder, root / "images", planted, classes=4)
    for stage in ("harvest", "images", "label"):
        monalia(folder, "--quiet", stage)
    return folder, planted


def by_kind(found: list[dict]) -> dict[str, set[str]]:
    kinds: dict[str, set[str]] = {}
    for entry in found:
        kinds.setdefault(entry["kind"], set()).add(entry["reference"])
    return kinds


def test_audit_finds_planted_blanks_charts_and_copies_and_counts_every_image(audited):
    folder, planted = audited
    done = monalia(folder, "audit", "--no-dataset", "--format", "json")
    found = json.loads(done.stdout)  # data only on stdout
    assert "audited" in done.stderr and "with problems" in done.stderr
    kinds = by_kind(found)
    of = {
        kind: {n for n, (k, _s) in planted.items() if k == kind}
        for kind in ("blank", "colour_chart", "duplicate")
    }
    assert of["blank"] <= kinds["low_information"]
    assert of["colour_chart"] <= kinds["odd_aspect_ratio"]
    copies = {planted[name][1] for name in of["duplicate"]} | of["duplicate"]
    assert copies <= kinds["exact_duplicates"]
    assert kinds["exact_duplicates"] <= copies  # exact: nothing else
    copy = next(
        e for e in found if e["kind"] == "exact_duplicates" and e["reference"] in of["duplicate"]
    )
    assert copy["detail"]["records"] and copy["meaning"].startswith("the same picture")
    with sqlite3.connect(folder.parent / "project" / "catalog.sqlite") as db:
        seen, new, unchanged, failed = db.execute(
            "SELECT seen, new, unchanged, failed FROM runs WHERE stage = 'audit' ORDER BY id DESC"
        ).fetchone()
        images = db.execute("SELECT count(*) FROM images WHERE status = 'fetched'").fetchone()[0]
    assert seen == images == new + unchanged + failed and failed == 0
    assert new == len({e["reference"] for e in found})

    # the stored findings, without running the checks again, by kind, as CSV
    stored = monalia(
        folder, "-q", "audit", "--stored", "--kind", "low_information", "--format", "csv"
    )
    rows = list(csv.DictReader(io.StringIO(stored.stdout)))
    assert {r["reference"] for r in rows} == kinds["low_information"]
    assert list(rows[0]) == [
        "record",
        "reference",
        "title",
        "kind",
        "scope",
        "score",
        "meaning",
        "image",
        "image_path",
        "detail",
    ]
    table = monalia(folder, "audit", "--stored", "--limit", "3")
    assert "low_information" in table.stdout and "3 shown" in table.stdout
    bad = monalia(folder, "audit", "--stored", "--kind", "rotten", check=False)
    assert bad.returncode != 0 and "one of dark" in bad.stderr


def test_an_unreadable_image_is_a_failed_item_and_label_leaves_problems_out(audited, tmp_path):
    import shutil

    folder = tmp_path / "project"
    shutil.copytree(audited[0], folder)
    planted = audited[1]
    text = (folder / "monalia.toml").read_text(encoding="utf-8")
    (folder / "monalia.toml").write_text(
        text.replace(str(audited[0]), str(folder)), encoding="utf-8"
    )
    with sqlite3.connect(folder / "catalog.sqlite") as db:
        path = db.execute("SELECT path FROM images ORDER BY id LIMIT 1").fetchone()[0]
    (folder / ".monalia" / path).unlink()
    done = monalia(folder, "audit", "--no-dataset")
    assert "1 unreadable" in done.stdout + done.stderr
    with sqlite3.connect(folder / "catalog.sqlite") as db:
        seen, new, unchanged, failed, run = db.execute(
            "SELECT seen, new, unchanged, failed, id FROM runs WHERE stage = 'audit' "
            "ORDER BY id DESC"
        ).fetchone()
        [(message,)] = db.execute(
            "SELECT message FROM run_events WHERE run_id = ? AND level = 'error'", (run,)
        ).fetchall()
    assert failed == 1 and seen == new + unchanged + failed
    assert "the fetched file is missing" in message

    (folder / "monalia.toml").write_text(
        (folder / "monalia.toml")
        .read_text(encoding="utf-8")
        .replace(
            "[dataset]\n", '[dataset]\nexclude_problems = ["low_information", "odd_aspect_ratio"]\n'
        ),
        encoding="utf-8",
    )
    labelled = monalia(folder, "label")
    blanks = sum(1 for kind, _ in planted.values() if kind in ("blank", "colour_chart"))
    assert "left out for their image's problems" in labelled.stdout
    with sqlite3.connect(folder / "catalog.sqlite") as db:
        stats = json.loads(
            db.execute("SELECT stats FROM datasets ORDER BY id DESC LIMIT 1").fetchone()[0]
        )
        members = {
            row[0]
            for row in db.execute(
                "SELECT r.source_id FROM dataset_members m JOIN records r ON r.id = m.record_id "
                "WHERE m.dataset_id = (SELECT max(id) FROM datasets)"
            )
        }
    assert stats["excluded_problems"]["records"] >= 1
    planted_out = {n for n, (k, _s) in planted.items() if k in ("blank", "colour_chart")}
    assert not members & planted_out
    assert sum(stats["excluded_problems"]["kinds"].values()) >= 1 and blanks
    # a name the audit does not know is refused when the project is read
    (folder / "monalia.toml").write_text(
        (folder / "monalia.toml")
        .read_text(encoding="utf-8")
        .replace('"odd_aspect_ratio"]', '"rotten"]'),
        encoding="utf-8",
    )
    refused = monalia(folder, "label", check=False)
    assert refused.returncode != 0 and "unknown problem 'rotten'" in refused.stderr


@pytest.mark.slow
def test_dataset_checks_read_out_of_sample_scores_and_vectors(audited, tmp_path):
    import shutil

    folder = tmp_path / "project"
    shutil.copytree(audited[0], folder)
    text = (folder / "monalia.toml").read_text(encoding="utf-8")
    (folder / "monalia.toml").write_text(
        text.replace(str(audited[0]), str(folder)), encoding="utf-8"
    )
    monalia(folder, "-q", "audit", "--no-dataset")
    untrained = monalia(folder, "audit", "--no-images")
    assert "no model yet" in untrained.stderr  # said, and the run still ends
    monalia(folder, "--quiet", "train")
    trained = monalia(folder, "audit", "--no-images")
    assert "no out-of-sample scores" in trained.stderr and "--folds" in trained.stderr
    monalia(folder, "--quiet", "train", "--folds", "3")
    done = monalia(folder, "audit", "--no-images", "--format", "json")
    found = json.loads(done.stdout)
    from monalia.curation.problem_kinds import DATASET_CHECKS

    assert found and {e["kind"] for e in found} <= set(DATASET_CHECKS)
    assert {e["scope"] for e in found} == {"dataset"}
    assert any(e["kind"] == "outlier" for e in found)
    # the image checks' findings stay: each run replaces only the checks it made
    with sqlite3.connect(folder / "catalog.sqlite") as db:
        image_rows = db.execute(
            "SELECT count(*) FROM audit_findings WHERE scope = 'image'"
        ).fetchone()[0]
    assert image_rows > 0
