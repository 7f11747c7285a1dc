"""Training sets: from labelled records to a versioned, split, exported dataset.

One image per record (its main image); images with the same content hash are one member, with
the union of their records' labels, so no image can land in two splits. Classes with too few
images are dropped and listed; a cap per class keeps the rarest classes' images first. The split
is multi-label iterative stratification (Sechidis et al., 2011) with a fixed seed. A dataset's
identity is the hash of its inputs (each image and its labels) and settings: the same inputs and
seed give the same hash and the same split.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, insert, select

from monalia.api.labeler import Labeling, TargetClass
from monalia.catalog.database import Catalog
from monalia.catalog.models import DatasetMemberRow, DatasetRow, ImageRow, RecordRow, utcnow
from monalia.errors import MonaliaError

SPLITS = ("train", "val", "test")
# Changes whenever the way members are chosen or split changes, so old hashes stay honest.
ALGORITHM = "monalia-dataset/1"


@dataclass(frozen=True)
class ImageChoice:
    """The image that stands for one record in a dataset."""

    image_id: int
    record_id: int
    key: str  # content hash when fetched, else the URL
    fetched: bool
    reference: tuple[str, str]  # (source, source id): stable across catalogs


@dataclass
class Candidate:
    """One distinct image and the classes its records carry."""

    key: str
    primary: ImageChoice  # the record that stands for the image: the first by reference
    record_ids: list[int]
    labels: set[str]

    @property
    def image_id(self) -> int:
        return self.primary.image_id


@dataclass
class DatasetPlan:
    """A dataset before it is stored: members per split and everything worth reporting."""

    name: str
    hash: str
    classes: list[TargetClass]
    members: list[tuple[Candidate, str]]  # candidate, split
    settings: dict[str, Any]
    stats: dict[str, Any] = field(default_factory=dict)


def main_images(
    catalog: Catalog, record_ids: Iterable[int], fetched_only: bool
) -> dict[int, ImageChoice]:
    """Each record's main image (else its first), among fetched ones when `fetched_only`."""
    wanted = sorted(set(record_ids))
    chosen: dict[int, ImageChoice] = {}
    chunk = 5000
    with catalog.session() as session:
        for start in range(0, len(wanted), chunk):
            ids = wanted[start : start + chunk]
            query = (
                select(
                    ImageRow.id,
                    ImageRow.record_id,
                    ImageRow.url,
                    ImageRow.sha256,
                    ImageRow.status,
                    RecordRow.source,
                    RecordRow.source_id,
                )
                .join(RecordRow, RecordRow.id == ImageRow.record_id)
                .where(ImageRow.record_id.in_(ids))
                .order_by(ImageRow.record_id, ImageRow.is_main.desc(), ImageRow.position)
            )
            if fetched_only:
                query = query.where(ImageRow.status == "fetched", ImageRow.sha256.is_not(None))
            for image_id, record_id, url, sha256, status, source, source_id in session.execute(
                query
            ):
                if record_id in chosen:
                    continue
                fetched = status == "fetched" and sha256 is not None
                chosen[record_id] = ImageChoice(
                    image_id, record_id, sha256 if fetched else url, fetched, (source, source_id)
                )
    return chosen


def _hash(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stratified_split(
    labels: np.ndarray, fractions: tuple[float, float, float], seed: int
) -> np.ndarray:
    """The split index (0 train, 1 val, 2 test) of each row of a 0/1 label matrix.

    Iterative stratification keeps each class's share close to the fractions in every split,
    rarest classes first; rows with no label are spread to fill the splits' sizes.
    """
    from iterstrat.ml_stratifiers import IterativeStratification

    count = labels.shape[0]
    if count == 0:
        return np.zeros(0, dtype=int)
    used = [index for index, part in enumerate(fractions) if part > 0]
    rng = np.random.RandomState(seed)
    order = np.arange(count)
    rng.shuffle(order)
    ratios = np.array([fractions[index] for index in used], dtype=float)
    folds = IterativeStratification(
        labels=labels[order].astype(bool), r=ratios / ratios.sum(), random_state=rng
    )
    result = np.empty(count, dtype=int)
    result[order] = np.array(used)[folds]
    return result


def keep_groups_together(
    members: list[Candidate], splits: np.ndarray, near_pairs: list[tuple[str, str]]
) -> tuple[np.ndarray, int, int]:
    """Put each group of near-duplicate members on one side of the split: the side most of
    them are on (ties: the earliest split, train first). (splits, groups, images moved)"""
    row_of = {candidate.key: row for row, candidate in enumerate(members)}
    parent = list(range(len(members)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in near_pairs:
        if a in row_of and b in row_of:
            parent[find(row_of[a])] = find(row_of[b])
    groups: dict[int, list[int]] = {}
    for row in range(len(members)):
        groups.setdefault(find(row), []).append(row)
    result = splits.copy()
    merged = moved = 0
    for rows in groups.values():
        if len(rows) < 2:
            continue
        merged += 1
        sides = Counter(int(splits[row]) for row in rows)
        side = max(sorted(sides), key=lambda split: sides[split])
        for row in rows:
            if result[row] != side:
                result[row] = side
                moved += 1
    return result, merged, moved


# The dataset's statistics from labelling, in the order `monalia dataset stats` shows them.
LABELING_COUNTS = (
    "records_seen",
    "records_with_subjects",
    "records_labelled",
    "labelled_without_image",
)
UNMATCHED_COUNTS = (
    "unmatched_labels",
    "unmatched_occurrences",
    "ambiguous_labels",
    "top_unmatched",
)


def plan_dataset(
    catalog: Catalog,
    labeling: Labeling,
    settings: dict[str, Any],
    name: str,
    near_pairs: list[tuple[str, str]] | None = None,
    excluded_images: dict[int, list[str]] | None = None,
) -> DatasetPlan:
    """Choose, balance and split the dataset's members; nothing is written. Images in
    `near_pairs` (content hashes of near duplicates) end up on the same side of the split;
    records whose image is in `excluded_images` (image id -> its problems) are left out."""
    labelled = labeling.assignments
    images = main_images(
        catalog,
        list(labelled) + list(labeling.records_without_class),
        settings["images"] == "fetched",
    )
    left_out = {"records": 0, "kinds": Counter()}
    if excluded_images:
        for record_id, choice in list(images.items()):
            problems = excluded_images.get(choice.image_id)
            if problems:
                del images[record_id]
                left_out["records"] += 1
                left_out["kinds"].update(problems)
    by_key = positive_candidates(labelled, images)
    positives = sorted(by_key.values(), key=lambda candidate: candidate.key)
    pool = negative_candidates(labeling.records_without_class, images, by_key)
    negative_pool = sorted(pool)
    candidates = set(by_key) | set(pool)
    near = sorted({tuple(sorted(pair)) for pair in near_pairs or [] if set(pair) <= candidates})

    inputs = {
        "algorithm": ALGORITHM,
        "settings": settings,
        "classes": [[target.uri, target.label] for target in labeling.classes],
        "images": [[c.key, sorted(c.labels)] for c in positives],
        "negatives": negative_pool if settings["negatives"] > 0 else [],
    }
    if near:  # a dataset made without near duplicates keeps its identity
        inputs["near_duplicates"] = near
    dataset_hash = _hash(inputs)

    # Classes with too few images are dropped; images left with no class go with them.
    available = Counter(label for candidate in positives for label in candidate.labels)
    dropped = [
        {"uri": target.uri, "label": target.label, "images": available[target.uri]}
        for target in labeling.classes
        if available[target.uri] < settings["min_per_class"]
    ]
    dropped_uris = {entry["uri"] for entry in dropped}
    kept_classes = [target for target in labeling.classes if target.uri not in dropped_uris]
    for candidate in positives:
        candidate.labels -= dropped_uris
    positives = [candidate for candidate in positives if candidate.labels]

    rng = random.Random(settings["seed"])
    shuffled = positives[:]
    rng.shuffle(shuffled)
    selected = _cap_per_class(shuffled, kept_classes, settings["max_per_class"])
    negatives = _draw_negatives(
        pool, negative_pool, round(settings["negatives"] * len(selected)), rng
    )

    members = sorted(selected, key=lambda candidate: candidate.key) + negatives
    kept_uris = [target.uri for target in kept_classes]
    splits = stratified_split(
        label_matrix(members, kept_uris), tuple(settings["split"]), settings["seed"]
    )
    splits, near_groups, near_moved = keep_groups_together(members, splits, near)
    excluded = {"records": left_out["records"], "kinds": dict(sorted(left_out["kinds"].items()))}
    planned = [(candidate, SPLITS[split]) for candidate, split in zip(members, splits, strict=True)]

    plan = DatasetPlan(name, dataset_hash, kept_classes, planned, settings)
    found = _labeling_stats(labeling, images)
    plan.stats = {
        **{key: found[key] for key in LABELING_COUNTS},
        "distinct_images": len(by_key),
        "shared_images": sum(len(c.record_ids) - 1 for c in by_key.values()),
        "available_per_class": {target.uri: available[target.uri] for target in labeling.classes},
        "dropped_classes": dropped,
        "capped": settings["max_per_class"] is not None,
        "negatives": len(negatives),
        "negative_pool": len(negative_pool),
        **{key: found[key] for key in UNMATCHED_COUNTS},
        "near_duplicate_groups": near_groups,  # kept on one side of the split
        "near_duplicate_moved": near_moved,  # images moved there from where stratifying put them
        "excluded_problems": excluded,  # records left out for their image's audit problems
        **split_stats(planned, kept_uris),
    }
    return plan


def positive_candidates(
    labelled: dict[int, set[str]], images: dict[int, ImageChoice]
) -> dict[str, Candidate]:
    """One candidate per distinct image, labels merged across the records that share it."""
    by_key: dict[str, Candidate] = {}
    for record_id, classes in labelled.items():
        image = images.get(record_id)
        if image is None:
            continue
        candidate = by_key.get(image.key)
        if candidate is None:
            by_key[image.key] = Candidate(image.key, image, [record_id], set(classes))
        else:
            candidate.record_ids.append(record_id)
            candidate.labels |= classes
            if image.reference < candidate.primary.reference:
                candidate.primary = image
    return by_key


def negative_candidates(
    records_without_class: Any, images: dict[int, ImageChoice], positives: dict[str, Candidate]
) -> dict[str, ImageChoice]:
    """The images of records with no class that no labelled record shares, one per image."""
    pool: dict[str, ImageChoice] = {}
    for record_id in records_without_class:
        image = images.get(record_id)
        if image is not None and image.key not in positives:
            known = pool.get(image.key)
            if known is None or image.reference < known.reference:
                pool[image.key] = image
    return pool


def _draw_negatives(
    pool: dict[str, ImageChoice], keys: list[str], wanted: int, rng: random.Random
) -> list[Candidate]:
    shuffled = keys[:]
    rng.shuffle(shuffled)
    return [
        Candidate(key, pool[key], [pool[key].record_id], set()) for key in sorted(shuffled[:wanted])
    ]


def label_matrix(members: list[Candidate], uris: list[str]) -> np.ndarray:
    """One row per member, one column per class: 1 where the member has the class."""
    column = {uri: index for index, uri in enumerate(uris)}
    matrix = np.zeros((len(members), len(uris)), dtype=np.uint8)
    for row, candidate in enumerate(members):
        for label in candidate.labels:
            matrix[row, column[label]] = 1
    return matrix


def _labeling_stats(labeling: Labeling, images: dict[int, ImageChoice]) -> dict[str, Any]:
    """What labelling found before any image was chosen: records, matches, what did not match."""
    labelled = labeling.assignments
    return {
        "records_seen": labeling.records_seen,
        "records_with_subjects": labeling.records_with_subjects,
        "records_labelled": len(labelled),
        "labelled_without_image": sum(1 for record in labelled if record not in images),
        "unmatched_labels": len(labeling.unmatched),
        "unmatched_occurrences": sum(labeling.unmatched.values()),
        "ambiguous_labels": len(labeling.ambiguous),
        "top_unmatched": [
            {"field": key[0], "label": key[1], "records": count}
            for key, count in labeling.unmatched.most_common(50)
        ],
    }


def _cap_per_class(
    shuffled: list[Candidate], classes: list[TargetClass], cap: int | None
) -> list[Candidate]:
    """At most about `cap` images per class, filling the rarest classes first.

    An image counts for every class it carries, so a frequent class that co-occurs with rare
    ones may end above the cap; no image is dropped that a rarer class needs.
    """
    if cap is None:
        return shuffled
    counts: Counter[str] = Counter()
    by_class: dict[str, list[Candidate]] = defaultdict(list)
    for candidate in shuffled:
        for label in candidate.labels:
            by_class[label].append(candidate)
    rarest_first = sorted(
        (target.uri for target in classes), key=lambda uri: (len(by_class[uri]), uri)
    )
    chosen: dict[str, Candidate] = {}
    for uri in rarest_first:
        for candidate in by_class[uri]:
            if counts[uri] >= cap:
                break
            if candidate.key in chosen:
                continue
            chosen[candidate.key] = candidate
            counts.update(candidate.labels)
    return [candidate for candidate in shuffled if candidate.key in chosen]


def split_stats(planned: list[tuple[Candidate, str]], class_uris: list[str]) -> dict[str, Any]:
    """Images and per-class counts in each split."""
    per_split: dict[str, dict[str, Any]] = {
        split: {"images": 0, "negatives": 0, "per_class": dict.fromkeys(class_uris, 0)}
        for split in SPLITS
    }
    for candidate, split in planned:
        entry = per_split[split]
        entry["images"] += 1
        if not candidate.labels:
            entry["negatives"] += 1
        for label in candidate.labels:
            entry["per_class"][label] += 1
    return {"splits": per_split, "images": len(planned)}


def store_dataset(
    catalog: Catalog,
    plan: DatasetPlan,
    run_id: int | None,
    class_concepts: dict[str, Any] | None = None,
) -> tuple[DatasetRow, bool]:
    """Store a planned dataset; an existing one with the same hash is returned as it is (given
    the class concepts it lacked, when it was made before datasets kept them)."""
    with catalog.session() as session:
        existing = session.scalar(select(DatasetRow).where(DatasetRow.hash == plan.hash))
        if existing is not None:
            if existing.class_concepts is None and class_concepts is not None:
                existing.class_concepts = class_concepts
                session.flush()
            session.expunge(existing)
            return existing, False
        row = DatasetRow(
            name=plan.name,
            hash=plan.hash,
            classes=[
                {"uri": target.uri, "label": target.label, "concepts": target.concepts}
                for target in plan.classes
            ],
            settings=plan.settings,
            stats=plan.stats,
            created_at=utcnow(),
            run_id=run_id,
            class_concepts=class_concepts,
        )
        session.add(row)
        session.flush()
        rows = [
            {
                "dataset_id": row.id,
                "image_id": candidate.image_id,
                "record_id": candidate.primary.record_id,
                "split": split,
                "labels": sorted(candidate.labels),
            }
            for candidate, split in plan.members
        ]
        # Core inserts: the ORM's bulk path costs several times more per row.
        table = DatasetMemberRow.__table__
        connection = session.connection()
        for start in range(0, len(rows), 5000):
            connection.execute(insert(table), rows[start : start + 5000])
        session.flush()
        session.expunge(row)
        return row, True


def find_dataset(catalog: Catalog, reference: str | None) -> DatasetRow:
    """A dataset by hash (or its first characters) or name (the newest of that name)."""
    with catalog.session() as session:
        query = select(DatasetRow).order_by(DatasetRow.id.desc())
        if reference:
            rows = session.scalars(
                query.where(
                    (DatasetRow.name == reference) | (DatasetRow.hash.startswith(reference))
                )
            ).all()
        else:
            rows = session.scalars(query.limit(1)).all()
        if not rows:
            known = session.scalars(select(DatasetRow.name).distinct()).all()
            raise MonaliaError(
                f"no dataset {reference!r} in the catalog"
                + (f" (it has: {', '.join(known)})" if known else "; run `monalia label` first")
                if reference
                else "the catalog holds no dataset yet: run `monalia label`"
            )
        hashes = {row.hash for row in rows}
        names = {row.name for row in rows}
        if reference and len(hashes) > 1 and reference not in names:
            raise MonaliaError(f"{reference!r} starts several dataset hashes: give more of it")
        row = rows[0]
        session.expunge(row)
        return row


def list_datasets(catalog: Catalog) -> list[tuple[DatasetRow, int]]:
    with catalog.session() as session:
        counts = dict(
            session.execute(
                select(DatasetMemberRow.dataset_id, func.count()).group_by(
                    DatasetMemberRow.dataset_id
                )
            ).all()
        )
        rows = session.scalars(select(DatasetRow).order_by(DatasetRow.id)).all()
        for row in rows:
            session.expunge(row)
    return [(row, counts.get(row.id, 0)) for row in rows]


def iter_members(catalog: Catalog, dataset_id: int) -> Iterable[dict[str, Any]]:
    """The members of a dataset with what a manifest needs, in a stable order."""
    with catalog.session() as session:
        query = (
            select(
                DatasetMemberRow.split,
                DatasetMemberRow.labels,
                DatasetMemberRow.image_id,
                DatasetMemberRow.record_id,
                RecordRow.source,
                RecordRow.source_id,
                ImageRow.sha256,
                ImageRow.path,
                ImageRow.url,
            )
            .join(ImageRow, ImageRow.id == DatasetMemberRow.image_id)
            .join(RecordRow, RecordRow.id == DatasetMemberRow.record_id)
            .where(DatasetMemberRow.dataset_id == dataset_id)
            .order_by(DatasetMemberRow.id)
        )
        for row in session.execute(query):
            yield dict(row._mapping)


def export_dataset(
    catalog: Catalog, dataset: DatasetRow, folder: Path, formats: list[str]
) -> list[Path]:
    """Write the dataset's manifests (CSV and/or JSONL), classes and stats into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    labels = {entry["uri"]: entry["label"] for entry in dataset.classes}
    written = []
    (folder / "classes.json").write_text(
        json.dumps(dataset.classes, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    (folder / "dataset.json").write_text(
        json.dumps(
            {
                "name": dataset.name,
                "hash": dataset.hash,
                "settings": dataset.settings,
                "stats": dataset.stats,
            },
            ensure_ascii=False,
            indent=2,
        ),
        encoding="utf-8",
    )
    handles: dict[str, Any] = {}
    try:
        if "csv" in formats:
            handles["csv"] = (folder / "manifest.csv").open("w", encoding="utf-8", newline="")
            writer = csv.writer(handles["csv"])
            writer.writerow(
                [
                    "split",
                    "image_id",
                    "record_id",
                    "source",
                    "source_id",
                    "sha256",
                    "path",
                    "url",
                    "labels",
                    "label_names",
                ]
            )
        if "jsonl" in formats:
            handles["jsonl"] = (folder / "manifest.jsonl").open("w", encoding="utf-8")
        for member in iter_members(catalog, dataset.id):
            names = [labels.get(uri, uri) for uri in member["labels"]]
            if "csv" in handles:
                writer.writerow(
                    [
                        member["split"],
                        member["image_id"],
                        member["record_id"],
                        member["source"],
                        member["source_id"],
                        member["sha256"] or "",
                        member["path"] or "",
                        member["url"],
                        "|".join(member["labels"]),
                        "|".join(names),
                    ]
                )
            if "jsonl" in handles:
                handles["jsonl"].write(
                    json.dumps({**member, "label_names": names}, ensure_ascii=False) + "\n"
                )
    finally:
        for handle in handles.values():
            handle.close()
    for name in ("csv", "jsonl"):
        if name in handles:
            written.append(folder / f"manifest.{name}")
    return written


def dataset_folder(data_dir: Path, dataset: DatasetRow) -> Path:
    return data_dir / "datasets" / f"{dataset.name}-{dataset.hash[:12]}"
