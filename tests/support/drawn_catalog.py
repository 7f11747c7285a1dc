"""A project whose harvested records have drawn pictures of their subjects, labelled into a
dataset: what the train and enrich tests start from."""

from __future__ import annotations

import hashlib
import random

from conftest import write_jsonl
from sqlalchemy import select, update

from monalia.catalog.database import Catalog
from monalia.catalog.models import ImageRow
from support.drawn_images import draw
from support.skos_data import DOG, HORSE, THESAURUS_TTL, TREE

SHAPE_OF = {HORSE: "disc", TREE: "triangle", DOG: "bars"}

PROJECT = """
[project]
catalog = "{catalog}"

[sources.collection]
plugin = "jsonl"
path = "records.jsonl"

[thesaurus]
files = ["garnier.ttl"]

[classes]
targets = ["{horse}", "{tree}", "{dog}"]

[dataset]
name = "drawn"
min_per_class = 5

[trainer]
plugin = "cnn"
input_size = 64
epochs = {epochs}
batch_size = 16
workers = 0

[pipeline]
stages = ["label", "train"]
"""


def build_project(folder, catalog_url, cli, count: int = 110, extra: str = "", epochs: int = 3):
    """Harvested records whose fetched pictures show their subjects; labelled into a dataset."""
    rng = random.Random(5)
    records, shapes_of = [], {}
    for number in range(count):
        classes = [uri for uri in SHAPE_OF if rng.random() < 0.45]
        url = f"https://img.example.org/{number}.jpg"
        shapes_of[url] = {SHAPE_OF[uri] for uri in classes}
        records.append(
            {
                "id": f"r{number}",
                "title": f"Œuvre {number}",
                "images": [url],
                "subjects": [{"uri": uri} for uri in classes] or ["paysage"],
            }
        )
    write_jsonl(folder / "records.jsonl", records)
    (folder / "garnier.ttl").write_text(THESAURUS_TTL, encoding="utf-8")
    (folder / "monalia.toml").write_text(
        PROJECT.format(catalog=catalog_url, horse=HORSE, tree=TREE, dog=DOG, epochs=epochs) + extra,
        encoding="utf-8",
    )
    assert cli("harvest", project=folder).exit_code == 0
    # what the image stage leaves: files named by their hash, rows marked fetched
    catalog = Catalog.open(catalog_url)
    with catalog.session() as session:
        for image_id, url in session.execute(select(ImageRow.id, ImageRow.url)).all():
            picture = draw(shapes_of[url], random.Random(url), size=80)
            path = folder / ".monalia" / "images" / "tmp.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            picture.save(path, "JPEG", quality=90)
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            final = path.with_name(f"{digest}.jpg")
            path.replace(final)
            session.execute(
                update(ImageRow)
                .where(ImageRow.id == image_id)
                .values(
                    status="fetched",
                    sha256=digest,
                    path=f"images/{final.name}",
                    width=80,
                    height=80,
                )
            )
    result = cli("label", project=folder)
    assert result.exit_code == 0, result.output
    return catalog
