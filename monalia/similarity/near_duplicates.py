"""Visual similarity: image embeddings, "more like this", near duplicates, and their RDF.

Vectors come from one embedder (`[similarity] model`): the ImageNet backbone by default, so
similarity works before any training; or the model `monalia enrich` scores with, whose features
enrich keeps in the same pass. They are stored by image content hash (`monalia.similarity.vectors`);
what is missing is embedded when first needed, a chunk at a time, so a killed run loses nothing
it finished. Identical files (the same content hash in several records) are duplicates for free;
near duplicates are pairs of vectors at or above `[similarity] threshold`, grouped.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select

from monalia.catalog.models import DuplicatePairRow, ImageRow, RecordRow, utcnow
from monalia.catalog.queries import image_file
from monalia.errors import ConfigError, MonaliaError
from monalia.project import Project
from monalia.rdf.terms import IRI, ML, RDF, XSD, Literal, Triple
from monalia.similarity.vectors import VectorStore, open_index, pairs_above

CHUNK = 512  # images embedded and stored together


@dataclass(frozen=True)
class ImageRef:
    """A fetched image of a record, as similarity reports it."""

    image_id: int
    record_id: int
    record: str  # the record's IRI
    source: str
    source_id: str
    title: str | None
    url: str
    sha256: str
    path: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "record": self.record,
            "source": self.source,
            "reference": self.source_id,
            "title": self.title,
            "image": self.url,
            "sha256": self.sha256,
        }


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "embedder"


@dataclass
class Embedding:
    """The project's embedder, its vectors and how to make more."""

    name: str
    store: VectorStore
    load: Callable[[], Any]  # -> a Predictor that can embed
    _predictor: Any = None

    @property
    def predictor(self):
        if self._predictor is None:
            self._predictor = self.load()
            if not self._predictor.can_embed:
                raise MonaliaError(f"the model of {self.name} cannot embed images")
        return self._predictor


def embedding(catalog, project: Project, scoring_model=None) -> Embedding:
    """The embedder `[similarity] model` names, with its vector store.

    `scoring_model` is the model enrich scores with, for `model = "scoring"`.
    """
    from monalia.api.trainer import LoadOptions

    section = project.file.similarity
    if section.model == "imagenet":
        weights = section.weights
        name = f"imagenet-{section.backbone}"
        if weights not in ("imagenet",):
            weights = str(project.context("similarity").path(weights))
            name += f"-{_slug(Path(weights).stem)}"

        def load():
            from monalia.similarity.embedder import BackboneEmbedder

            return BackboneEmbedder(section.backbone, weights, section.device, section.batch_size)

    else:
        from monalia.catalog.lookups import find_model, model_folder

        model = scoring_model
        if section.model != "scoring" or model is None:
            reference = None if section.model == "scoring" else section.model
            model = find_model(
                catalog, reference or project.file.enrich.model, project.model_dataset
            )
        name = model.name

        def load():
            options = LoadOptions(section.device, section.batch_size, 0)
            return project.trainer_plugin(model.trainer).scorer(
                model_folder(project, model), options
            )

    folder = project.data_dir / "similarity" / _slug(name)
    return Embedding(name, VectorStore(folder, name), load)


def fetched_images(catalog, sources: list[str] | None = None) -> list[ImageRef]:
    """Every fetched image of a record not deleted, by image id."""
    query = (
        select(
            ImageRow.id,
            ImageRow.record_id,
            RecordRow.iri,
            RecordRow.source,
            RecordRow.source_id,
            RecordRow.title,
            ImageRow.url,
            ImageRow.sha256,
            ImageRow.path,
        )
        .join(RecordRow, RecordRow.id == ImageRow.record_id)
        .where(
            ImageRow.status == "fetched",
            ImageRow.sha256.is_not(None),
            RecordRow.deleted_at.is_(None),
        )
        .order_by(ImageRow.id)
    )
    if sources:
        query = query.where(RecordRow.source.in_(sources))
    with catalog.session() as session:
        return [ImageRef(*row) for row in session.execute(query)]


def embed_missing(
    project: Project, found: Embedding, images: list[ImageRef], progress=None
) -> tuple[int, int]:
    """Embed the images whose content has no vector yet, a chunk at a time; (embedded,
    unreadable)."""
    todo: dict[str, Path] = {}
    for image in images:
        path = image_file(project.data_dir, image.path)
        if path is not None and path.is_file():
            todo.setdefault(image.sha256, path)
    return embed_files(found, todo, progress)


def embed_files(found: Embedding, files: dict[str, Path], progress=None) -> tuple[int, int]:
    """Embed the files (by content hash) whose vector is not stored yet; (embedded, unreadable)."""
    known = found.store.keys()
    todo = {key: path for key, path in files.items() if key and key not in known}
    if not todo:
        return 0, 0
    if progress is not None and hasattr(progress, "set_total"):
        progress.set_total(len(todo))
    keys = list(todo)
    chunks = (
        (part, [todo[key] for key in part], part)
        for part in (keys[start : start + CHUNK] for start in range(0, len(keys), CHUNK))
    )
    embedded = unreadable = 0
    for chunk in found.predictor.score_chunks(chunks, progress, embed=True):
        chosen = [chunk.items[int(k)] for k in chunk.indices]
        embedded += found.store.add(chosen, chunk.embeddings)
        unreadable += len(chunk.unreadable)
    return embedded, unreadable


def keep_chunk_vectors(found: Embedding, chunk) -> int:
    """Store the feature vectors a scored chunk carries (enrich's same pass)."""
    if chunk.embeddings is None or not len(chunk.indices):
        return 0
    keys = [chunk.items[int(k)].sha256 or "" for k in chunk.indices]
    return found.store.add(keys, chunk.embeddings)


def embed_unseen(
    project: Project, found: Embedding, images: list[ImageRef], progress=None, say=None
) -> tuple[int, int]:
    """`embed_missing` over the images that have no vector (an unreadable one never has),
    saying first how many it embeds; (embedded, unreadable)."""
    known = found.store.keys()
    missing = [image for image in images if image.sha256 not in known]
    if not missing:
        return 0, 0
    if say is not None:
        count = len({image.sha256 for image in missing})
        say(f"embedding {count:,} images with {found.name} (kept for the next time)")
    return embed_missing(project, found, missing, progress)


def record_vectors(catalog, project: Project, progress=None, say=None):
    """One vector per record (its first fetched image that has one), embedding what is
    missing first: (the embedding, the images chosen, their vectors), in image id order."""
    found = embedding(catalog, project)
    images = fetched_images(catalog)
    embed_unseen(project, found, images, progress, say)
    keys, matrix = found.store.load()
    position = {key: i for i, key in enumerate(keys)}
    chosen, rows, seen = [], [], set()
    for image in images:
        at = position.get(image.sha256)
        if at is None or image.record_id in seen:
            continue
        seen.add(image.record_id)
        chosen.append(image)
        rows.append(at)
    return found, chosen, matrix[rows]


def ready_index(catalog, project: Project, found: Embedding, progress=None, say=None):
    """The index over every fetched image's vector, embedding what is missing first."""
    images = fetched_images(catalog)
    _embedded, unreadable = embed_unseen(project, found, images, progress, say)
    index = open_index(found.store, project.file.similarity.exact_limit)
    return images, index, unreadable


@dataclass
class NearPairs:
    """The fetched images, the pairs of their vectors at or above a threshold, and the images
    left without a vector (their file is missing or could not be read)."""

    images: list[ImageRef]
    pairs: list[tuple[str, str, float]]
    without_vector: set[int]  # image ids


def near_pairs(
    catalog, project: Project, found: Embedding, threshold: float, progress=None, say=None
) -> NearPairs:
    """Every pair of fetched images whose vectors are at or above `threshold` (content
    hashes, similarity), embedding what has no vector first."""
    images, index, _unreadable = ready_index(catalog, project, found, progress, say)
    keys, vectors = found.store.load()
    present = {image.sha256 for image in images}
    rows = [k for k, key in enumerate(keys) if key in present]
    pairs = list(pairs_above(index, [keys[k] for k in rows], vectors[rows], threshold))
    stored = set(keys)
    without = {image.image_id for image in images if image.sha256 not in stored}
    return NearPairs(images, pairs, without)


# -- more like this -------------------------------------------------------------------------


@dataclass
class Neighbour:
    image: ImageRef
    similarity: float


def resolve_reference(catalog, reference: str) -> list[ImageRef]:
    """The fetched images of the record `reference` names: its IRI, `source:id`, its id alone,
    or an image URL."""
    images = fetched_images(catalog)
    for match in (
        lambda i: i.record == reference,
        lambda i: f"{i.source}:{i.source_id}" == reference,
        lambda i: i.url == reference,
        lambda i: i.source_id == reference,
    ):
        found = [image for image in images if match(image)]
        if found:
            return found
    raise ConfigError(
        f"no record or fetched image {reference!r} in the catalog: name a record by its IRI, "
        "SOURCE:ID or ID, an image by its URL, or give an image file"
    )


def similar(
    catalog,
    project: Project,
    query: str,
    k: int = 10,
    source: str | None = None,
    progress=None,
    say=None,
) -> tuple[list[ImageRef], list[Neighbour]]:
    """The `k` records whose images are nearest to `query` (a record reference or an image
    file, embedded on the fly), best first; the query's own record is left out."""
    import numpy as np

    found = embedding(catalog, project)
    images, index, _unreadable = ready_index(catalog, project, found, progress, say)
    path = Path(query)
    own: list[ImageRef] = []
    if path.is_file():
        from monalia.learning.image_decode import decode_for_model

        predictor = found.predictor
        try:
            if hasattr(
                predictor, "pixels_of"
            ):  # the embedder's own view (monalia.similarity.embedder)
                pixels = predictor.pixels_of(path)
            else:
                pixels = decode_for_model(path, predictor.input_size)
        except Exception as exc:
            raise ConfigError(f"{path}: not an image that can be read ({exc})") from None
        vectors = predictor.embed_batch(pixels[None])
    else:
        own = resolve_reference(catalog, query)
        vectors = []
        for image in own:
            vector = found.store.vector(image.sha256)
            if vector is not None:
                vectors.append(vector)
        if not vectors:
            raise MonaliaError(f"{query}: its image could not be read, so it has no vector")
        vectors = np.stack(vectors)
    by_key: dict[str, list[ImageRef]] = defaultdict(list)
    for image in images:
        by_key[image.sha256].append(image)
    own_records = {image.record_id for image in own}
    best: dict[int, Neighbour] = {}
    wanted = k * 4 + len(own) + 10
    for hits in index.search(vectors, wanted):
        for hit in hits:
            for image in by_key.get(hit.key, []):
                if image.record_id in own_records or (source and image.source != source):
                    continue
                known = best.get(image.record_id)
                if known is None or hit.similarity > known.similarity:
                    best[image.record_id] = Neighbour(image, hit.similarity)
    ranked = sorted(best.values(), key=lambda n: (-n.similarity, n.image.record))
    return own, ranked[:k]


# -- duplicates -----------------------------------------------------------------------------


@dataclass
class DuplicateGroup:
    number: int
    images: list[ImageRef] = field(default_factory=list)
    pairs: list[tuple[ImageRef, ImageRef, float, str]] = field(default_factory=list)

    @property
    def sources(self) -> set[str]:
        return {image.source for image in self.images}

    @property
    def lowest(self) -> float:
        return min((pair[2] for pair in self.pairs), default=1.0)


def _groups(images: list[ImageRef], near: list[tuple[str, str, float]]) -> list[DuplicateGroup]:
    """Union of identical files and near pairs into groups of two or more records."""
    by_key: dict[str, list[ImageRef]] = defaultdict(list)
    for image in images:
        by_key[image.sha256].append(image)
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: int, b: int) -> None:
        parent[find(a)] = find(b)

    pairs: list[tuple[ImageRef, ImageRef, float, str]] = []
    for same in by_key.values():  # identical files: free
        distinct = {}
        for image in same:
            distinct.setdefault(image.record_id, image)
        members = list(distinct.values())
        for other in members[1:]:
            union(members[0].image_id, other.image_id)
            pairs.append((members[0], other, 1.0, "content"))
    for key_a, key_b, score in near:
        a, b = by_key[key_a][0], by_key[key_b][0]
        if a.record_id == b.record_id:
            continue  # two images of one record
        union(a.image_id, b.image_id)
        pairs.append((a, b, score, "embedding"))
    members: dict[int, dict[int, ImageRef]] = defaultdict(dict)
    for a, b, _score, _method in pairs:
        for image in (a, b):
            members[find(image.image_id)][image.image_id] = image
    grouped: dict[int, DuplicateGroup] = {}
    ordered = sorted(members.items(), key=lambda item: min(item[1]))
    for number, (root, found) in enumerate(ordered, start=1):
        grouped[root] = DuplicateGroup(number, sorted(found.values(), key=lambda i: i.image_id))
    for pair in pairs:
        grouped[find(pair[0].image_id)].pairs.append(pair)
    return [group for group in grouped.values() if len({i.record_id for i in group.images}) > 1]


@dataclass
class DuplicateSearch:
    embedder: str
    threshold: float
    groups: list[DuplicateGroup]
    images: int  # fetched images looked at
    without_vector: set[int]  # image ids whose file is missing or could not be read


def find_duplicates(
    catalog,
    project: Project,
    threshold: float | None = None,
    across_sources: bool = False,
    progress=None,
    say=None,
) -> DuplicateSearch:
    """Groups of records whose images are the same picture: identical files first, then
    vectors at or above the threshold."""
    found = embedding(catalog, project)
    threshold = project.file.similarity.threshold if threshold is None else threshold
    near = near_pairs(catalog, project, found, threshold, progress, say)
    groups = _groups(near.images, near.pairs)
    if across_sources:
        groups = [group for group in groups if len(group.sources) > 1]
        for group in groups:
            group.pairs = [p for p in group.pairs if p[0].source != p[1].source]
    return DuplicateSearch(found.name, threshold, groups, len(near.images), near.without_vector)


def store_duplicates(
    catalog, embedder: str, threshold: float, groups: list[DuplicateGroup], run_id=None
) -> int:
    """Replace the catalog's pairs of this embedder with these; how many pairs."""
    now = utcnow()
    rows = [
        {
            "group_number": group.number,
            "image_a": a.image_id,
            "image_b": b.image_id,
            "record_a": a.record_id,
            "record_b": b.record_id,
            "similarity": float(score),
            "method": method,
            "embedder": embedder,
            "threshold": float(threshold),
            "found_at": now,
            "run_id": run_id,
        }
        for group in groups
        for a, b, score, method in group.pairs
    ]
    with catalog.session() as session:
        session.execute(delete(DuplicatePairRow).where(DuplicatePairRow.embedder == embedder))
        if rows:
            session.execute(insert(DuplicatePairRow), rows)
        session.commit()
    return len(rows)


def duplicates_graph_iri(base_iri: str) -> str:
    return f"{base_iri}graph/duplicates"


def duplicate_triples(
    groups: list[DuplicateGroup], base_iri: str, embedder: str
) -> Iterator[Triple]:
    """Each pair as an `ml:DuplicatePair` (its records, similarity, method and embedder), and
    `ml:nearDuplicateOf` between the records both ways (never `owl:sameAs`)."""
    from monalia.hashing import text_digest

    for group in groups:
        for a, b, score, method in group.pairs:
            node = IRI(f"{base_iri}duplicate/{text_digest(embedder, a.record, b.record)}")
            yield node, RDF + "type", IRI(ML + "DuplicatePair")
            yield node, ML + "duplicateRecord", IRI(a.record)
            yield node, ML + "duplicateRecord", IRI(b.record)
            yield node, ML + "similarity", Literal(f"{score:.4f}", datatype=XSD + "float")
            yield node, ML + "duplicateMethod", Literal(method)
            yield node, ML + "embedder", Literal(embedder)
            yield IRI(a.record), ML + "nearDuplicateOf", IRI(b.record)
            yield IRI(b.record), ML + "nearDuplicateOf", IRI(a.record)


def publish_duplicates(
    project: Project, groups: list[DuplicateGroup], embedder: str, sinks: list[str] | None = None
) -> dict[str, int]:
    base = project.file.project.base_iri
    graph = duplicates_graph_iri(base)
    written = {}
    for name in sinks or list(project.sinks):
        instance = project.sinks.get(name)
        if instance is None:
            raise ConfigError(
                f"no sink {name!r} in the project (its sinks: {', '.join(project.sinks)})"
            )
        counts = instance.create().publish([(graph, duplicate_triples(groups, base, embedder))])
        written[name] = sum(counts.values())
    return written


def stored_groups(catalog, record_id: int | None = None) -> list[dict[str, Any]]:
    """The duplicate groups the catalog holds (of one record, or all), with their records."""
    with catalog.session() as session:
        query = select(DuplicatePairRow)
        if record_id is not None:
            numbers = select(DuplicatePairRow.group_number).where(
                (DuplicatePairRow.record_a == record_id) | (DuplicatePairRow.record_b == record_id)
            )
            query = query.where(DuplicatePairRow.group_number.in_(numbers))
        pairs = session.scalars(query.order_by(DuplicatePairRow.group_number)).all()
        ids = {p.record_a for p in pairs} | {p.record_b for p in pairs}
        records = {
            row.id: row
            for row in session.execute(
                select(
                    RecordRow.id,
                    RecordRow.iri,
                    RecordRow.source,
                    RecordRow.source_id,
                    RecordRow.title,
                ).where(RecordRow.id.in_(ids))
            )
        }
        images = {p.image_a for p in pairs} | {p.image_b for p in pairs}
        urls = dict(
            session.execute(select(ImageRow.id, ImageRow.url).where(ImageRow.id.in_(images))).all()
        )
        groups: dict[int, dict[str, Any]] = {}
        for pair in pairs:
            group = groups.setdefault(
                pair.group_number,
                {
                    "number": pair.group_number,
                    "records": {},
                    "pairs": [],
                    "embedder": pair.embedder,
                },
            )
            for record, image in ((pair.record_a, pair.image_a), (pair.record_b, pair.image_b)):
                row = records[record]
                group["records"][record] = {
                    "id": record,
                    "iri": row.iri,
                    "source": row.source,
                    "reference": row.source_id,
                    "title": row.title,
                    "image_id": image,
                    "image": urls.get(image),
                }
            group["pairs"].append(
                {
                    "a": records[pair.record_a].iri,
                    "b": records[pair.record_b].iri,
                    "similarity": pair.similarity,
                    "method": pair.method,
                }
            )
    result = []
    for group in groups.values():
        group["records"] = list(group["records"].values())
        result.append(group)
    return result
