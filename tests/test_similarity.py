"""Similarity over real icons with planted copies: vectors, the index, `monalia similar`,
`monalia duplicates` (catalog and RDF), and near duplicates kept together in the split."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from monalia.catalog.database import Catalog
from monalia.catalog.models import DatasetMemberRow, DatasetRow, DuplicatePairRow, RecordRow

pytest.importorskip("torch", reason="the train extra is not installed")
pytest.importorskip("faiss", reason="the train extra is not installed")

from support.similarity_project import ICONS, build, transform


def invoke(folder: Path, *args: str):
    from monalia.cli import cli as command

    result = CliRunner().invoke(
        command, ["--project", str(folder), "-q", *args], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="session")
def template(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("similar-template")
    origin = build(folder, lambda *args: invoke(folder, *args))
    project = folder / "monalia.toml"
    text = project.read_text(encoding="utf-8")
    project.write_text(text.replace(f"sqlite:///{folder}/", "sqlite:///"), encoding="utf-8")
    return folder, origin


@pytest.fixture
def project(template, tmp_path, monkeypatch) -> tuple[Path, dict[str, str]]:
    monkeypatch.delenv("MONALIA_CATALOG", raising=False)
    folder, origin = template
    target = tmp_path / "project"
    shutil.copytree(folder, target)
    return target, origin


def catalog_of(folder: Path) -> Catalog:
    return Catalog.open(f"sqlite:///{folder / 'catalog.sqlite'}")


def reference(record: dict) -> str:
    return record["reference"]


def test_duplicates_finds_the_planted_copies_and_pairs_no_two_artworks(project):
    folder, origin = project
    result = invoke(folder, "duplicates", "--format", "json")
    groups = json.loads(result.stdout[result.stdout.index("[") : result.stdout.rindex("]") + 1])
    found = {}
    for group in groups:
        ids = {reference(record) for record in group["records"]}
        originals = {i for i in ids if i.startswith("icon-")}
        assert len(originals) == 1, f"two different artworks in one group: {sorted(ids)}"
        for copy in ids - originals:
            found[copy] = next(iter(originals))
    assert found.get("copy-same-file") == origin["copy-same-file"]
    correct = {copy for copy, original in found.items() if origin.get(copy) == original}
    assert len(correct) >= len(origin) - 2, sorted(set(origin) - correct)  # most are found
    same_file = next(
        g for g in groups if "copy-same-file" in {r["reference"] for r in g["records"]}
    )
    assert any(p["method"] == "content" and p["similarity"] == 1.0 for p in same_file["pairs"])
    # recorded in the catalog, one row per pair
    with catalog_of(folder).session() as session:
        pairs = session.scalars(select(DuplicatePairRow)).all()
    assert len(pairs) == sum(len(g["pairs"]) for g in groups)
    assert {p.embedder for p in pairs} == {"imagenet-efficientnet_lite0"}
    # the run's counts: every fetched image in a group, in none, or failed
    from monalia.catalog.models import RunRow

    with catalog_of(folder).session() as session:
        run = session.scalars(select(RunRow).where(RunRow.stage == "duplicates")).one()
    assert run.seen == run.new + run.changed + run.unchanged + run.failed == 53
    assert run.new == sum(len(g["records"]) for g in groups) and run.failed == 0
    # a second run replaces the pairs, it does not add to them
    invoke(folder, "duplicates", "--no-publish")
    with catalog_of(folder).session() as session:
        assert len(session.scalars(select(DuplicatePairRow)).all()) == len(pairs)


def test_the_duplicates_graph_passes_the_shapes(project):
    pyshacl = pytest.importorskip("pyshacl")
    import rdflib

    folder, _origin = project
    invoke(folder, "duplicates", "--across-sources")
    [written] = list((folder / "out").glob("*duplicates*.ttl"))
    graph = rdflib.Graph().parse(written, format="turtle")
    ml = rdflib.Namespace("http://ns.inria.fr/monalia/")
    pairs = set(graph.subjects(rdflib.RDF.type, ml.DuplicatePair))
    assert pairs and len(list(graph.subject_objects(ml.nearDuplicateOf))) == 2 * len(pairs)
    for pair in pairs:  # across sources: one record of each
        records = [str(r) for r in graph.objects(pair, ml.duplicateRecord)]
        assert len(records) == 2 and {"icons" in r for r in records} == {True, False}
    assert not list(graph.triples((None, rdflib.OWL.sameAs, None)))
    shapes = rdflib.Graph().parse(
        Path(__file__).resolve().parent.parent / "ontology" / "shapes.ttl", format="turtle"
    )
    conforms, _, text = pyshacl.validate(graph, shacl_graph=shapes)
    assert conforms, text
    broken = rdflib.Graph()
    for triple in graph:
        broken.add(triple)
    broken.remove((next(iter(pairs)), ml.similarity, None))
    assert not pyshacl.validate(broken, shacl_graph=shapes)[0]


def test_similar_puts_the_original_first_for_a_copy_and_for_a_file_from_outside(project, tmp_path):
    folder, origin = project
    copy = next(c for c in origin if c.endswith("-crop"))
    result = invoke(folder, "similar", f"copies:{copy}", "--k", "3", "--format", "json")
    rows = json.loads(result.stdout)
    assert rows[0]["reference"] == origin[copy] and len(rows) == 3
    assert rows[0]["similarity"] >= rows[1]["similarity"]
    only = json.loads(
        invoke(folder, "similar", copy, "--source", "copies", "--format", "json").stdout
    )
    assert all(row["source"] == "copies" for row in only)
    # an image that is not in the collection, transformed in a way not planted: mirrored
    from PIL import Image, ImageOps

    names = sorted(p.name for p in ICONS.glob("*.jpg"))
    outside = tmp_path / "outside.jpg"
    with Image.open(ICONS / names[20]) as image:
        ImageOps.mirror(transform(image.convert("RGB"), "jpeg30")).save(outside)
    rows = json.loads(invoke(folder, "similar", str(outside), "--format", "json").stdout)
    assert rows[0]["reference"] == "icon-020"
    table = invoke(folder, "similar", "icon-005").stdout
    assert "similarity" in table and "icon-005" not in table.split("\n", 2)[2]


def test_vectors_are_one_per_image_after_an_interrupted_run(project, monkeypatch):
    from monalia.api.registry import default_registry
    from monalia.project import load_project
    from monalia.similarity import near_duplicates as similarity

    folder, _origin = project
    catalog = catalog_of(folder)
    loaded = load_project(folder / "monalia.toml", default_registry())
    monkeypatch.setattr(similarity, "CHUNK", 10)
    found = similarity.embedding(catalog, loaded)
    images = similarity.fetched_images(catalog)
    real_add = found.store.add
    calls = []

    def add_then_die(keys, vectors):
        calls.append(len(keys))
        written = real_add(keys, vectors)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed after two chunks were stored
        return written

    monkeypatch.setattr(found.store, "add", add_then_die)
    with pytest.raises(KeyboardInterrupt):
        similarity.embed_missing(loaded, found, images)
    again = similarity.embedding(catalog, loaded)
    assert len(again.store.keys()) == 20
    embedded, unreadable = similarity.embed_missing(loaded, again, images)
    distinct = {image.sha256 for image in images}
    assert embedded == len(distinct) - 20 and unreadable == 0
    keys, vectors = similarity.embedding(catalog, loaded).store.load()
    assert sorted(keys) == sorted(distinct) and vectors.dtype == np.float16
    assert np.allclose(np.linalg.norm(vectors.astype(np.float32), axis=1), 1, atol=1e-2)
    assert similarity.embed_missing(loaded, again, images) == (0, 0)  # nothing left to do


def test_the_index_is_exact_small_approximate_large_and_extends_and_merges(project):
    from monalia.similarity.vectors import VectorIndex, VectorStore, open_index

    rng = np.random.default_rng(0)
    base = rng.standard_normal((40, 64)).astype(np.float32)
    data = np.concatenate([base + 0.05 * rng.standard_normal((40, 64)) for _ in range(100)])
    keys = [f"k{n}" for n in range(len(data))]
    exact = VectorIndex.build(keys, data, exact_up_to=10_000)
    approximate = VectorIndex.build(keys, data, exact_up_to=100)
    assert (exact.kind, approximate.kind) == ("exact", "ivf")
    queries = data[:50]
    recall = np.mean(
        [
            len({h.key for h in a} & {h.key for h in b}) / 10
            for a, b in zip(exact.search(queries, 10), approximate.search(queries, 10), strict=True)
        ]
    )
    assert recall >= 0.9
    # per shard, then merged: the same answers as one index
    left = VectorIndex.build(keys[:2000], data[:2000], exact_up_to=100)
    import faiss

    empty = faiss.clone_index(left.index)  # the same trained lists, no vectors
    empty.reset()
    right = VectorIndex(empty, [], "ivf")
    right.add(keys[2000:], data[2000:])
    left.merge(right)
    assert len(left.keys) == len(keys) and left.index.ntotal == len(keys)
    # saved beside the vectors, extended with what is added later
    folder, _ = project
    store = VectorStore(folder / "vectors-test", "test")
    store.add(keys[:300], data[:300])
    assert open_index(store, 10_000).index.ntotal == 300
    store.add(keys[250:400], data[250:400])  # 100 new, 50 already there
    again = open_index(store, 10_000)
    assert again.index.ntotal == 400 and sorted(again.keys) == sorted(keys[:400])
    assert again.search(data[350], 1)[0][0].key == "k350"


def test_label_keeps_near_duplicates_on_one_side_of_the_split(project):
    folder, origin = project
    result = invoke(folder, "label")
    assert "near duplicates:" in result.output
    catalog = catalog_of(folder)
    with catalog.session() as session:
        dataset = session.scalars(select(DatasetRow).order_by(DatasetRow.id.desc())).first()
        split_of = dict(
            session.execute(
                select(RecordRow.source_id, DatasetMemberRow.split)
                .join(RecordRow, RecordRow.id == DatasetMemberRow.record_id)
                .where(DatasetMemberRow.dataset_id == dataset.id)
            ).all()
        )
    assert dataset.stats["near_duplicate_groups"] >= len(origin) - 3
    together = [c for c in origin if c in split_of and origin[c] in split_of]
    assert together, "the copies and their originals are in the dataset"
    assert all(split_of[c] == split_of[origin[c]] for c in together), {
        c: (split_of[c], split_of[origin[c]]) for c in together
    }


def test_without_the_split_setting_the_copies_may_cross(project):
    """The same labels without `[similarity] split`: the dataset is another one (its hash
    changes with the groups), so the setting is what keeps them together."""
    folder, _origin = project
    project_file = folder / "monalia.toml"
    project_file.write_text(
        project_file.read_text(encoding="utf-8") + "\n[similarity]\nsplit = false\n",
        encoding="utf-8",
    )
    invoke(folder, "label")
    with catalog_of(folder).session() as session:
        dataset = session.scalars(select(DatasetRow).order_by(DatasetRow.id.desc())).first()
    assert dataset.stats["near_duplicate_groups"] == 0
