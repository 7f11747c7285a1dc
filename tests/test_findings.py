"""Better findings: calibrated scores, thresholds compared as written, the pooled rule for sparse
classes, notations, and the confident method over out-of-sample scores on real icons."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyoxigraph as ox
import pytest
from support.byzart_project import build
from support.skos_data import HORSE, IC_HORSE, ICONCLASS_NT, THESAURUS_TTL
from test_cold_start import cold_run

from monalia import Subject
from monalia.api.labeler import ClassRequest
from monalia.api.plugin import PluginContext
from monalia.curation.confident_learning import find_issues, ranking
from monalia.learning.calibration import Calibration, choose_calibration, expected_calibration_error
from monalia.learning.metrics import pick_curation_thresholds
from monalia.plugins.labelers.skos import SkosLabeler
from monalia.rdf.sparql import ScoreValue, bind
from monalia.rdf.thesaurus import Thesaurus

ICONS = Path(__file__).parent / "fixtures" / "images" / "byzart_icons"


def test_calibration_brings_overconfident_scores_to_what_they_mean_and_keeps_the_ranking():
    rng = np.random.default_rng(1)
    truth_p = rng.uniform(0.05, 0.95, size=(3000, 2))
    targets = (rng.uniform(size=truth_p.shape) < truth_p).astype(int)
    logits = np.log(truth_p / (1 - truth_p))
    scores = 1 / (1 + np.exp(-3 * logits))  # far too sure of itself
    calibration = choose_calibration(targets[:1500], scores[:1500])
    assert calibration.method in ("temperature", "platt")
    assert set(calibration.measured["validation_ece"]) == {
        "none",
        "temperature",
        "platt",
        "isotonic",
    }
    before = expected_calibration_error(targets[1500:], scores[1500:])
    after = expected_calibration_error(targets[1500:], calibration.apply(scores[1500:]))
    assert after < before / 2, (before, after)
    calibrated = calibration.apply(scores)
    for column in range(2):  # search and the reports rank by these scores
        assert (
            np.argsort(calibrated[:, column], kind="stable")
            == np.argsort(scores[:, column], kind="stable")
        ).mean() > 0.99
    uris = ["urn:a", "urn:b"]
    again = Calibration.from_card(json.loads(json.dumps(calibration.as_card(uris))), uris)
    assert np.allclose(again.apply(scores), calibrated)


def test_a_class_with_few_validation_positives_gets_the_pooled_rule_not_a_collapse():
    rng = np.random.default_rng(2)
    targets = np.zeros((200, 3), dtype=int)
    targets[:60, 0] = 1
    targets[60:120, 1] = 1
    targets[120:122, 2] = 1  # two positives only
    scores = np.clip(targets * 0.7 + rng.uniform(0, 0.3, targets.shape), 0, 1)
    thresholds = np.array([0.5, 0.5, 0.6])
    found = pick_curation_thresholds(targets, scores, thresholds)
    assert [entry["rule"] for entry in found] == ["validation", "validation", "pooled"]
    sparse = found[2]
    assert sparse["positives"] == 2
    assert sparse["noise_below"] < 0.6 < sparse["silence_above"]


def test_a_score_equal_to_its_threshold_is_not_below_it_in_the_store():
    store = ox.Store()
    store.add(
        ox.Quad(
            ox.NamedNode("urn:d"),
            ox.NamedNode("http://ns.inria.fr/monalia/score"),
            ox.Literal("0.8333", datatype=ox.NamedNode("http://www.w3.org/2001/XMLSchema#float")),
        )
    )
    query = "SELECT ?s WHERE { ?d <http://ns.inria.fr/monalia/score> ?s FILTER(?s < ?below) }"
    as_double = bind(query, below=0.8333)
    as_written = bind(query, below=ScoreValue(0.8333))
    assert len(list(store.query(as_double))) == 1, "an xsd:double threshold exceeds the float"
    assert list(store.query(as_written)) == []


def test_a_frozen_backbone_has_its_own_learning_rate_and_no_early_decay():
    from monalia.plugins.trainers.cnn.settings import CnnSettings

    assert (CnnSettings().learning_rate, CnnSettings().lr_step) == (0.001, 4)
    frozen = CnnSettings(freeze_backbone=True, epochs=12)
    assert (frozen.learning_rate, frozen.lr_step) == (0.01, 12)
    assert CnnSettings(freeze_backbone=True, learning_rate=0.002).learning_rate == 0.002


def test_subjects_given_as_notations_match_when_asked(tmp_path):
    (tmp_path / "garnier.ttl").write_text(THESAURUS_TTL, encoding="utf-8")
    (tmp_path / "iconclass.nt").write_text(ICONCLASS_NT, encoding="utf-8")
    with Thesaurus() as thesaurus:
        thesaurus.load(tmp_path / "garnier.ttl")
        thesaurus.load(tmp_path / "iconclass.nt")
        records = [(1, [Subject(label="25F23(HORSE)", field="iconclass")])]
        for kinds, expected in ((None, {}), (["pref", "alt", "notation"], {1: {IC_HORSE}})):
            settings = {"label_kinds": kinds} if kinds else {}
            skos = SkosLabeler(
                SkosLabeler.Settings(**settings), PluginContext("labeler", project_dir=tmp_path)
            )
            classes = skos.prepare(thesaurus, ClassRequest((IC_HORSE,), "en", ()))
            assignments = skos.label(classes, records).assignments
            assert {k: v & {IC_HORSE, HORSE} for k, v in assignments.items()} == expected
        # a class named by its notation, where notations are asked for
        assert [
            c.uri for c in skos.prepare(thesaurus, ClassRequest(("25F23(HORSE)",), "en", ()))
        ] == [IC_HORSE]


def test_confident_learning_flags_planted_errors_and_ranks_them_first():
    rng = np.random.default_rng(3)
    truth = (rng.uniform(size=(400, 4)) < 0.3).astype(int)
    scores = np.clip(truth * 0.75 + rng.uniform(0, 0.25, truth.shape), 0.001, 0.999)
    given = truth.copy()
    flipped = [(i, i % 4) for i in range(0, 40, 2)]
    for row, column in flipped:
        given[row, column] = 1 - given[row, column]
    issues = find_issues(given, scores)
    noise = {(r, c) for c, entry in enumerate(issues) for r in entry.noise}
    silence = {(r, c) for c, entry in enumerate(issues) for r in entry.silence}
    planted_noise = {(r, c) for r, c in flipped if given[r, c] == 1}
    planted_silence = {(r, c) for r, c in flipped if given[r, c] == 0}
    assert len(planted_noise & noise) >= 0.9 * len(planted_noise)
    assert len(planted_silence & silence) >= 0.9 * len(planted_silence)
    order = ranking(given, scores, issues, "noise")
    assert len(set(order[: len(planted_noise)]) & planted_noise) >= 0.8 * len(planted_noise)


def monalia(folder: Path, *args: str, check: bool = True):
    done = subprocess.run(
        [sys.executable, "-m", "monalia", "--quiet", *args],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def score_set_counts(catalog: Path, suffix: str) -> tuple[int, int, tuple[int, int]]:
    """(dataset images, classes, (scores, distinct (image, class) pairs)) of a score set."""
    with sqlite3.connect(catalog) as db:
        members = db.execute("SELECT count(*) FROM dataset_members").fetchone()[0]
        classes = len(json.loads(db.execute("SELECT classes FROM datasets").fetchone()[0]))
        pairs = db.execute(
            "SELECT count(*), count(DISTINCT p.image_id || ' ' || p.class_index) FROM predictions p "
            "JOIN models m ON m.id = p.model_id WHERE m.name LIKE ?",
            (f"%{suffix}",),
        ).fetchone()
    return members, classes, tuple(pairs)


def scores_name(catalog: Path) -> str:
    with sqlite3.connect(catalog) as db:
        return db.execute("SELECT name FROM models WHERE name LIKE '%-oos3'").fetchone()[0]


@pytest.mark.slow
def test_out_of_sample_scores_survive_a_kill_and_the_confident_report_lists_its_top_errors(
    tmp_path,
):
    folder = tmp_path / "icons"
    planted = build(folder, ICONS, lambda *a: monalia(folder, *a), rate=0.08, min_images=20)
    assert planted.noise and planted.silence
    monalia(folder, "train")
    catalog = folder / "catalog.sqlite"

    def oos_rows() -> int:
        with sqlite3.connect(catalog) as db:
            found = db.execute(
                "SELECT count(*) FROM predictions p JOIN models m ON m.id = p.model_id "
                "WHERE m.name LIKE '%-oos3'"
            ).fetchone()
        return found[0]

    # killed once its first fold is written, then run again to the end
    process = subprocess.Popen(
        [sys.executable, "-m", "monalia", "--quiet", "train", "--folds", "3"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while oos_rows() == 0 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    written_before = oos_rows()
    monalia(folder, "train", "--folds", "3")
    members, classes, pairs = score_set_counts(catalog, "-oos3")
    with sqlite3.connect(catalog) as db:
        runs = db.execute(
            "SELECT status, seen, new, unchanged, failed FROM runs WHERE stage = 'train' "
            "AND target LIKE '%-oos3' ORDER BY id"
        ).fetchall()
    assert written_before % classes == 0, "an image has all its scores or none"
    assert 0 < written_before <= members * classes
    assert pairs == (members * classes, members * classes), "one score per (image, class)"
    (killed, finished) = runs
    assert finished[0] == "done" and killed[0] != "done"
    assert finished[1] == finished[2] + finished[3] + finished[4] == members
    assert finished[3] == written_before // classes, "what the killed run scored is kept"
    assert killed[2] + finished[2] == members, "each image scored once over the two runs"

    # the score set is never taken for a model: enrich scores with the model itself
    refused = monalia(folder, "enrich", "--model", scores_name(catalog), check=False)
    assert refused.returncode != 0 and "not a model that can score" in refused.stderr
    monalia(folder, "enrich")
    noise = json.loads(monalia(folder, "report", "noise", "--format", "json").stdout)
    silence = json.loads(monalia(folder, "report", "silence", "--format", "json").stdout)
    assert {f["method"] for f in noise + silence} <= {"confident", "threshold"}
    assert any(f["method"] == "confident" and f["scores"].endswith("-oos3") for f in noise)

    # confident learning ran once, with the folds: a report reads what it stored, in a fresh
    # process that imports neither cleanlab nor numpy
    with sqlite3.connect(catalog) as db:
        stored = dict(
            db.execute("SELECT kind, count(*) FROM confident_findings GROUP BY kind").fetchall()
        )
    confident = [f for f in noise if f["method"] == "confident"]
    assert 0 < len(confident) <= stored["noise"]
    done, imported = cold_run("report", "noise", "--format", "json", cwd=folder)
    assert done.returncode == 0 and json.loads(done.stdout) == noise
    assert not {"cleanlab", "sklearn", "numpy", "sqlalchemy"} & set(imported), imported
    # a score set made before findings were stored: computed on the spot, the same report
    with sqlite3.connect(catalog) as db:
        (card,) = db.execute("SELECT card FROM models WHERE name LIKE '%-oos3'").fetchone()
        card = {k: v for k, v in json.loads(card).items() if k != "confident_findings"}
        db.execute("UPDATE models SET card = ? WHERE name LIKE '%-oos3'", (json.dumps(card),))
        db.execute("DELETE FROM confident_findings")
    again = json.loads(monalia(folder, "report", "noise", "--format", "json").stdout)
    assert again == noise
    # every planted error that the confident ranking puts in its first 2n is in the report
    from monalia.catalog.database import Catalog
    from monalia.catalog.lookups import find_model
    from monalia.stages.train.crossfit import score_set_of

    opened = Catalog.open(f"sqlite:///{catalog}")
    model = find_model(opened, None)
    scores_set = score_set_of(opened, model.name)
    with sqlite3.connect(catalog) as db:
        rows = db.execute(
            "SELECT r.source_id, c.uri, p.score FROM predictions p "
            "JOIN model_classes c ON c.model_id = p.model_id AND c.class_index = p.class_index "
            "JOIN images i ON i.id = p.image_id JOIN records r ON r.id = i.record_id "
            "WHERE p.model_id = ?",
            (scores_set.id,),
        ).fetchall()
    records = sorted({r for r, _, _ in rows})
    uris = sorted({u for _, u, _ in rows})
    matrix = np.zeros((len(records), len(uris)))
    for record, uri, score in rows:
        matrix[records.index(record), uris.index(uri)] = score
    labels = np.array([[u in planted.given[r] for u in uris] for r in records], dtype=int)
    issues = find_issues(labels, matrix)
    for kind, found, errors in (
        ("noise", noise, planted.noise),
        ("silence", silence, planted.silence),
    ):
        order = [(records[r], uris[c]) for r, c in ranking(labels, matrix, issues, kind)]
        flagged = {(records[r], uris[c]) for c, e in enumerate(issues) for r in getattr(e, kind)}
        top = {pair for pair in order[: 2 * len(errors)] if pair in errors and pair in flagged}
        listed = {(f["reference"], f["class"]) for f in found}
        assert top <= listed, (kind, top - listed)
    # train left its plots where the HTML report finds them, and its card says how it calibrated
    folder_of_model = folder / ".monalia" / "models" / model.name
    card = json.loads((folder_of_model / "model_card.json").read_text())
    assert {"before", "after"} <= set(card["calibration"]["ece"])
    assert list((folder_of_model / "evaluation-test").glob("*.png"))


@pytest.mark.slow
def test_on_a_ray_cluster_with_gpus_the_folds_train_side_by_side(tmp_path):
    folder = tmp_path / "icons"
    build(folder, ICONS, lambda *a: monalia(folder, *a), rate=0.05, min_images=20)
    monalia(folder, "train")
    with (folder / "monalia.toml").open("a", encoding="utf-8") as toml:
        # a local Ray that declares two GPUs: the scheduling is what is checked, on CPUs
        toml.write('\n[executor]\nkind = "ray"\ncpus = 2\ngpus = 2\n')
    done = subprocess.run(
        [sys.executable, "-m", "monalia", "train", "--folds", "2"],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 folds train at a time" in done.stdout + done.stderr
    members, classes, pairs = score_set_counts(folder / "catalog.sqlite", "-oos2")
    assert pairs == (members * classes, members * classes)
    folds = sorted((folder / ".monalia" / "models").glob("*-oos2/fold-*/model_card.json"))
    assert len(folds) == 2
