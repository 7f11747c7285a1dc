"""A catalog whose images a registered model has scored: what the sink tests publish.

Scores are planted (no training), so the tests know which records a query must return.
"""

from __future__ import annotations

import random

from conftest import write_jsonl
from sqlalchemy import select, update

from monalia.catalog.database import Catalog
from monalia.catalog.models import ImageRow, ModelRow, PredictionRow, RecordRow, utcnow
from monalia.testing import store_scores
from support.skos_data import DOG, HORSE, THESAURUS_TTL, TREE

CLASSES = [
    {"uri": HORSE, "label": "cheval"},
    {"uri": TREE, "label": "arbre"},
    {"uri": DOG, "label": "chien"},
]
MODEL = "planted-efficientnet_lite0-0123456789"

PROJECT = """
[project]
catalog = "{catalog}"

[sources.collection]
plugin = "jsonl"
path = "records.jsonl"
"""


def planted_score(rng: random.Random) -> float:
    # a quarter of the scores are confident, to give MonaLIA's >= 0.90 query rows to find
    return round(rng.uniform(0.9, 1.0) if rng.random() < 0.25 else rng.uniform(0.0, 0.9), 6)


def build_scored_catalog(folder, catalog_url, cli, count: int = 40, extra: str = "") -> Catalog:
    write_jsonl(
        folder / "records.jsonl",
        [
            {
                "id": f"r{number}",
                "title": f"Œuvre {number}",
                "images": [f"https://img.example.org/{number}.jpg"],
            }
            for number in range(count)
        ],
    )
    (folder / "garnier.ttl").write_text(THESAURUS_TTL, encoding="utf-8")
    (folder / "monalia.toml").write_text(
        PROJECT.format(catalog=catalog_url) + extra, encoding="utf-8"
    )
    result = cli("harvest", project=folder)
    assert result.exit_code == 0, result.output
    catalog = Catalog.open(catalog_url)
    rng = random.Random(11)
    now = utcnow()
    with catalog.session() as session:
        session.execute(
            update(ImageRow).values(status="fetched", sha256=ImageRow.url, path=ImageRow.url)
        )
        model = ModelRow(
            name=MODEL,
            trainer="cnn",
            backbone="efficientnet_lite0",
            classes=CLASSES,
            thresholds={entry["uri"]: 0.5 for entry in CLASSES},
            metrics={"evaluated_on": "test", "test": {"map": 0.8}, "per_class": {}},
            card={"dataset_hash": "d" * 64},
            path="models/planted",
            created_at=now,
        )
        session.add(model)
        session.flush()
        model_id = model.id
        images = session.execute(select(ImageRow.id, ImageRow.record_id, ImageRow.sha256)).all()
    store_scores(
        catalog,
        model_id,
        [
            {
                "model_id": model_id,
                "image_id": image.id,
                "record_id": image.record_id,
                "class_uri": entry["uri"],
                "score": planted_score(rng),
                "image_sha256": image.sha256,
                "scored_at": now,
            }
            for image in images
            for entry in CLASSES
        ],
    )
    return catalog


def planted_scores(catalog) -> dict[tuple[str, str], float]:
    """(record IRI, class URI) -> score, as the catalog holds them."""
    with catalog.session() as session:
        rows = session.execute(
            select(RecordRow.iri, PredictionRow.class_uri, PredictionRow.score)
            .select_from(PredictionRow)
            .join(RecordRow, RecordRow.id == PredictionRow.record_id)
        ).all()
    return {(iri, uri): score for iri, uri, score in rows}


def jocondelab_notices(catalog) -> str:
    """The records as JocondeLab notices (the Joconde KB the scores extend), with T523 labels."""
    lines = [
        "@prefix jcl: <http://jocondelab.iri-research.org/ns/jocondelab/> .",
        "@prefix skos: <http://www.w3.org/2004/02/skos/core#> .",
    ]
    for entry in CLASSES:
        lines.append(f'<{entry["uri"]}> a jcl:Term ; skos:prefLabel "{entry["label"]}"@fr .')
    with catalog.session() as session:
        for iri, ref, title in session.execute(
            select(RecordRow.iri, RecordRow.source_id, RecordRow.title)
        ).all():
            lines.append(
                f'<{iri}> a jcl:Notice ; jcl:noticeRef "{ref}" ; jcl:noticeTitr "{title}" ; '
                f'jcl:noticeImage [ jcl:noticeImageIsMain true ; jcl:noticeImagePath "/{ref}.jpg" ] .'
            )
    return "\n".join(lines) + "\n"


def monalia_query_expected(catalog, label: str) -> list[tuple[str, float]]:
    """What MonaLIA's search by score must return: (ref, score) with score >= 0.90, best first."""
    uri = next(entry["uri"] for entry in CLASSES if entry["label"] == label)
    with catalog.session() as session:
        rows = session.execute(
            select(RecordRow.source_id, PredictionRow.score)
            .select_from(PredictionRow)
            .join(RecordRow, RecordRow.id == PredictionRow.record_id)
            .where(PredictionRow.class_uri == uri)
        ).all()
    # the RDF holds scores to 4 decimals: the query compares those
    found = [(ref, round(score, 4)) for ref, score in rows if round(score, 4) >= 0.9]
    return sorted(found, key=lambda row: (-row[1], row[0]))
