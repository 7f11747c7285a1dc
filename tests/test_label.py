"""The label stage end to end: thesaurus commands, labelling the catalog, versioned datasets."""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections import Counter, defaultdict

import pytest
from conftest import write_jsonl
from sqlalchemy import select, update
from support.skos_data import HORSE, HUMAN, IC_FOAL, ICONCLASS_NT, LINKS_CSV, THESAURUS_TTL, TREE

from monalia.catalog.database import Catalog
from monalia.catalog.models import DatasetMemberRow, DatasetRow, ImageRow, RecordRow, RunRow

DOG_LABEL = "chien"


def collection(count: int = 240, seed: int = 1) -> list[dict]:
    """Records whose subjects reach the classes in every way a source writes them."""
    rng = random.Random(seed)
    records = []
    for i in range(count):
        subjects: list = []
        if rng.random() < 0.45:
            subjects.append(
                rng.choice(
                    [
                        {"uri": HORSE, "label": "cheval", "field": "REPR"},
                        {"label": "Poulain", "field": "REPR_text"},
                        {"uri": IC_FOAL, "field": "iconclass"},
                    ]
                )
            )
        if rng.random() < 0.35:
            subjects.append(rng.choice(["arbre", {"label": "CHÊNE", "field": "REPR_text"}]))
        if rng.random() < 0.3:
            subjects.append({"label": DOG_LABEL, "field": "REPR"})
        if i % 40 == 0:
            subjects.append({"label": "soldat", "field": "REPR"})
        if not subjects or rng.random() < 0.2:
            subjects.append({"label": "paysage nocturne", "field": "REPR_text"})
        if i in (2, 3):  # one picture in two records (see image_key)
            subjects = [{"uri": HORSE, "field": "REPR"}] if i == 2 else ["arbre"]
        records.append(
            {
                "id": f"rec-{i:04d}",
                "title": f"Œuvre {i}",
                "images": [f"https://images.example.org/{i}.jpg"],
                "subjects": subjects,
            }
        )
    return records


def image_key(url: str) -> str:
    number = int(url.rsplit("/", 1)[1].split(".")[0])
    # records 2 and 3 hold the same picture: one member, both records' labels
    return hashlib.sha256(str(2 if number == 3 else number).encode()).hexdigest()


def fetch_images(catalog_url: str, skip=lambda number: number % 17 == 5) -> None:
    """Mark images fetched as the image stage would, leaving some pending."""
    catalog = Catalog.open(catalog_url)
    with catalog.session() as session:
        for image_id, url in session.execute(select(ImageRow.id, ImageRow.url)).all():
            number = int(url.rsplit("/", 1)[1].split(".")[0])
            if skip(number):
                continue
            session.execute(
                update(ImageRow)
                .where(ImageRow.id == image_id)
                .values(status="fetched", sha256=image_key(url), path=f"images/{number}.jpg")
            )


PROJECT = """
[project]
catalog = "{catalog}"

[sources.collection]
plugin = "jsonl"
path = "records.jsonl"
subject_language = "fr"

[thesaurus]
files = ["garnier.ttl", "iconclass.nt"]

[classes]
targets = ["cheval", "{tree}", "chien", "être humain"]
language = "fr"

[labeler]
plugin = "skos"
links = ["links.csv"]
related = true

[dataset]
name = "test"
min_per_class = 10
{dataset}
"""


@pytest.fixture
def labelled_project(tmp_path, catalog_url, cli):
    """A harvested project with a thesaurus, classes and fetched images; returns a builder."""

    def build(dataset: str = "", records: list[dict] | None = None, folder=None):
        folder = folder or tmp_path
        folder.mkdir(exist_ok=True)
        write_jsonl(folder / "records.jsonl", records or collection())
        (folder / "garnier.ttl").write_text(THESAURUS_TTL, encoding="utf-8")
        (folder / "iconclass.nt").write_text(ICONCLASS_NT, encoding="utf-8")
        (folder / "links.csv").write_text(LINKS_CSV, encoding="utf-8")
        url = catalog_url if folder == tmp_path else f"sqlite:///{folder / 'catalog.sqlite'}"
        (folder / "monalia.toml").write_text(
            PROJECT.format(catalog=url, tree=TREE, dataset=dataset), encoding="utf-8"
        )
        result = cli("harvest", project=folder)
        assert result.exit_code == 0, result.output
        fetch_images(url)
        return folder, Catalog.open(url)

    return build


def members_of(catalog: Catalog, dataset_hash: str) -> list[tuple[str, str, str, list[str]]]:
    """(source id, image key, split, labels) of every member."""
    with catalog.session() as session:
        rows = session.execute(
            select(
                RecordRow.source_id,
                ImageRow.sha256,
                DatasetMemberRow.split,
                DatasetMemberRow.labels,
            )
            .join(DatasetRow, DatasetRow.id == DatasetMemberRow.dataset_id)
            .join(ImageRow, ImageRow.id == DatasetMemberRow.image_id)
            .join(RecordRow, RecordRow.id == DatasetMemberRow.record_id)
            .where(DatasetRow.hash == dataset_hash)
        ).all()
    return sorted((a, b, c, sorted(d)) for a, b, c, d in rows)


def only_dataset(catalog: Catalog) -> DatasetRow:
    with catalog.session() as session:
        rows = session.scalars(select(DatasetRow)).all()
        assert len(rows) == 1, f"expected one dataset, found {len(rows)}"
        session.expunge_all()
    return rows[0]


def test_label_builds_a_stratified_dataset_with_no_image_in_two_splits(labelled_project, cli):
    folder, catalog = labelled_project()
    result = cli("label", project=folder)
    assert result.exit_code == 0, result.output
    dataset = only_dataset(catalog)
    assert [c["label"] for c in dataset.classes] == ["cheval", "arbre", "chien"]
    dropped = dataset.stats["dropped_classes"]
    assert [(d["uri"], d["images"]) for d in dropped] == [(HUMAN, 6)]
    assert "dropped: too few images" in result.output

    members = members_of(catalog, dataset.hash)
    keys = [key for _, key, _, _ in members]
    assert len(keys) == len(set(keys)), "an image (content hash) is in the dataset once"
    splits_of = defaultdict(set)
    for _, key, split, _ in members:
        splits_of[key].add(split)
    assert all(len(splits) == 1 for splits in splits_of.values())
    shared = [m for m in members if m[1] == image_key("https://images.example.org/2.jpg")]
    assert [(m[0], m[3]) for m in shared] == [("rec-0002", sorted([HORSE, TREE]))]
    assert dataset.stats["shared_images"] == 1

    # every class is in every split, near its 70/15/15 share
    per_class = Counter((label, split) for _, _, split, labels in members for label in labels)
    for target in dataset.classes:
        total = sum(per_class[target["uri"], split] for split in ("train", "val", "test"))
        for split, share in (("train", 0.7), ("val", 0.15), ("test", 0.15)):
            assert abs(per_class[target["uri"], split] - share * total) <= 2, (target, split)
    assert dataset.stats["splits"]["train"]["per_class"][HORSE] == per_class[HORSE, "train"]

    # unfetched images are left out and counted; the run is recorded
    assert dataset.stats["labelled_without_image"] > 0
    with catalog.session() as session:
        run = session.scalars(select(RunRow).where(RunRow.stage == "label")).one()
        assert (
            run.status == "done"
            and run.seen == 240
            and run.new == dataset.stats["records_labelled"]
        )


def test_the_same_inputs_and_seed_give_the_same_dataset(labelled_project, cli, tmp_path):
    folder, catalog = labelled_project()
    assert cli("label", project=folder).exit_code == 0
    first = only_dataset(catalog)
    again = cli("label", project=folder)
    assert "unchanged" in again.output
    assert only_dataset(catalog).hash == first.hash

    # another catalog, records harvested in another order: same hash, same split
    other_folder, other = labelled_project(
        records=list(reversed(collection())), folder=tmp_path / "other"
    )
    assert cli("label", project=other_folder).exit_code == 0
    copy = only_dataset(other)
    assert copy.hash == first.hash
    assert members_of(other, copy.hash) == members_of(catalog, first.hash)

    # another seed: another hash and another split of the same images
    reseeded, _ = labelled_project(dataset="seed = 7", folder=tmp_path / "reseeded")
    assert cli("label", project=reseeded).exit_code == 0
    changed = only_dataset(Catalog.open(f"sqlite:///{reseeded / 'catalog.sqlite'}"))
    assert changed.hash != first.hash
    moved = members_of(Catalog.open(f"sqlite:///{reseeded / 'catalog.sqlite'}"), changed.hash)
    assert {m[1] for m in moved} == {m[1] for m in members_of(catalog, first.hash)}
    assert moved != members_of(catalog, first.hash)


def test_a_cap_keeps_the_rarest_classes_first_and_negatives_are_added(labelled_project, cli):
    folder, catalog = labelled_project(dataset="max_per_class = 30\nnegatives = 0.25")
    result = cli("label", project=folder)
    assert result.exit_code == 0, result.output
    dataset = only_dataset(catalog)
    members = members_of(catalog, dataset.hash)
    counts = Counter(label for *_, labels in members for label in labels)
    available = dataset.stats["available_per_class"]
    rarest = min((uri for uri in counts), key=lambda uri: available[uri])
    assert counts[rarest] == 30, "the rarest class fills its cap"
    positives = [m for m in members if m[3]]
    negatives = [m for m in members if not m[3]]
    assert len(negatives) == round(0.25 * len(positives)) == dataset.stats["negatives"]
    records = {row["id"]: row for row in collection()}
    for source_id, *_ in negatives:
        labels = {
            s if isinstance(s, str) else s.get("label") for s in records[source_id]["subjects"]
        }
        assert labels & {"cheval", "Poulain", "arbre", "CHÊNE", "chien"} == set(), source_id
    assert {m[2] for m in negatives} >= {"train"}


def test_unmatched_labels_are_listed_for_curators(labelled_project, cli, tmp_path):
    folder, catalog = labelled_project()
    out = tmp_path / "unmatched.csv"
    result = cli("label", "--unmatched", "--csv", str(out), project=folder)
    assert result.exit_code == 0, result.output
    assert "paysage nocturne" in result.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    expected = sum(
        1
        for record in collection()
        if {"label": "paysage nocturne", "field": "REPR_text"} in record["subjects"]
    )
    assert rows == [{"field": "REPR_text", "label": "paysage nocturne", "records": str(expected)}]
    with catalog.session() as session:
        assert session.scalars(select(DatasetRow)).all() == [], "--unmatched writes no dataset"


def test_manifests_stats_and_export(labelled_project, cli, tmp_path):
    folder, catalog = labelled_project()
    assert cli("label", project=folder).exit_code == 0
    dataset = only_dataset(catalog)
    exported = folder / ".monalia" / "datasets" / f"test-{dataset.hash[:12]}"
    rows = list(csv.DictReader((exported / "manifest.csv").open(encoding="utf-8")))
    lines = (exported / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    members = members_of(catalog, dataset.hash)
    assert len(rows) == len(lines) == len(members)
    by_record = {row["source_id"]: row for row in rows}
    source_id, key, split, labels = members[0]
    assert by_record[source_id]["sha256"] == key and by_record[source_id]["split"] == split
    assert by_record[source_id]["labels"].split("|") == labels
    assert json.loads((exported / "classes.json").read_text())[0]["label"] == "cheval"

    stats = cli("dataset", "stats", "test", project=folder)
    assert stats.exit_code == 0, stats.output
    horse_line = next(line for line in stats.output.splitlines() if "cheval" in line)
    split_counts = Counter(s for _, _, s, labels in members if HORSE in labels)
    assert [int(n) for n in horse_line.replace("│", " ").split() if n.isdigit()][-4:] == [
        split_counts["train"],
        split_counts["val"],
        split_counts["test"],
        sum(split_counts.values()),
    ]
    as_json = json.loads(
        cli("dataset", "stats", dataset.hash[:10], "--json", project=folder).output
    )
    assert as_json["hash"] == dataset.hash
    listing = cli("dataset", project=folder)
    assert dataset.hash[:12] in listing.output

    out = tmp_path / "export"
    result = cli("dataset", "export", "--out", str(out), "--format", "jsonl", project=folder)
    assert result.exit_code == 0 and (out / "manifest.jsonl").is_file()
    assert not (out / "manifest.csv").exists()
    missing = cli("dataset", "stats", "nope", project=folder)
    assert missing.exit_code != 0 and "no dataset 'nope'" in missing.output


def test_an_unknown_class_is_one_clear_error_and_nothing_is_written(labelled_project, cli):
    folder, catalog = labelled_project()
    text = (folder / "monalia.toml").read_text().replace('"chien"', '"chienn"')
    (folder / "monalia.toml").write_text(text)
    result = cli("label", project=folder)
    assert result.exit_code == 2, "a mistake in the project file exits like a usage error"
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert error_lines == [
        "Error: unknown class label 'chienn': no concept of the loaded thesaurus has it as a "
        "label in 'fr' (did you mean 'chien'?)"
    ]
    with catalog.session() as session:
        assert session.scalars(select(DatasetRow)).all() == []
        assert session.scalars(select(RunRow).where(RunRow.stage == "label")).all() == []


def test_thesaurus_commands(labelled_project, cli):
    folder, _ = labelled_project()
    loaded = cli("thesaurus", "load", project=folder)
    assert loaded.exit_code == 0, loaded.output
    assert "thesaurus: 16 concepts in 2 file(s)" in loaded.output
    shown = cli("thesaurus", "show", "Cheval", project=folder)
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0] == f"cheval  <{HORSE}>"
    assert any(line.split()[:2] == ["broader", "animal"] for line in lines)
    assert any(line.split()[:2] == ["narrower", "poulain"] for line in lines)
    assert any(line.split()[:2] == ["related", "cavalier"] for line in lines)
    assert any(line.split()[:2] == ["altLabel", "équidé"] for line in lines)
    ambiguous = cli("thesaurus", "show", "croix", project=folder)
    assert ambiguous.output.count("prefLabel") == 2
    expanded = cli("thesaurus", "expand", "être humain", project=folder)
    assert expanded.exit_code == 0, expanded.output
    assert "3 concepts" in expanded.output.splitlines()[0]
    assert "soldat" in expanded.output, "the project's links and related setting apply"
    listing = cli("thesaurus", project=folder)
    assert "garnier.ttl" in listing.output
    unknown = cli("thesaurus", "show", "licornes ailées", project=folder)
    assert unknown.exit_code == 1 and "no concept has the label" in unknown.output


def test_run_chains_harvest_and_label(labelled_project, cli):
    folder, catalog = labelled_project()
    text = (folder / "monalia.toml").read_text() + '\n[pipeline]\nstages = ["harvest", "label"]\n'
    (folder / "monalia.toml").write_text(text)
    result = cli("run", project=folder)
    assert result.exit_code == 0, result.output
    with catalog.session() as session:
        stages = [run.stage for run in session.scalars(select(RunRow).order_by(RunRow.id))]
    assert stages == ["harvest", "harvest", "label"]


def test_the_monalia_40_preset_holds_monalias_classes(real_fixtures):
    from monalia.stages.label import preset_targets

    published = {
        row["prefLabel_fr"]: row["concept_uri"]
        for row in csv.DictReader(
            (real_fixtures / "thesaurus" / "joconde_REPR_T523_concepts_from_monalia.csv").open(
                encoding="utf-8"
            )
        )
    }
    targets = preset_targets("monalia-40")
    assert len(targets) == 40
    assert set(targets) == {uri or label for label, uri in published.items()}


def test_the_dataset_keeps_what_each_class_covered_for_publishing_and_curation(
    labelled_project, cli
):
    from types import SimpleNamespace

    from support.skos_data import FOAL

    from monalia.classes import class_coverage
    from monalia.project import load_project

    folder, catalog = labelled_project()
    assert cli("label", project=folder).exit_code == 0
    dataset = only_dataset(catalog)
    assert FOAL in dataset.class_concepts[HORSE], "the foal is under the horse in the thesaurus"
    assert "poulain" in dataset.class_concepts[HORSE][FOAL]
    assert IC_FOAL in dataset.class_concepts[HORSE], "matched concepts are kept too"

    # the thesaurus changes after labelling: the foal is gone from it
    garnier = folder / "garnier.ttl"
    garnier.write_text(garnier.read_text(encoding="utf-8").replace("poulain", "pouliche"))
    assert cli("thesaurus", "load", project=folder).exit_code == 0
    coverage = class_coverage(
        catalog, load_project(folder / "monalia.toml"), SimpleNamespace(dataset_id=dataset.id)
    )
    assert coverage.thesaurus is None, "the catalog answers, not today's thesaurus"
    assert FOAL in coverage.expansions[HORSE]
    assert "poulain" in coverage.concept_labels[FOAL]
    assert "pouliche" not in coverage.concept_labels[FOAL]
