"""The label stage: the project's classes through the thesaurus, every record labelled, a dataset.

Subjects are read from the catalog in one streamed query, in record order, so memory holds the
labels of the records and not the records themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from monalia.api.labeler import Labeler, Labeling, TargetClass
from monalia.api.records import Subject
from monalia.catalog.database import Catalog
from monalia.catalog.lookups import count_records
from monalia.catalog.models import RecordRow, SubjectRow
from monalia.catalog.run_tracking import DONE, RunInfo, RunTracker
from monalia.classes import (  # noqa: F401  (part of this module's interface)
    PRESETS,
    class_request,
    prepare_labeler,
    preset_targets,
)
from monalia.errors import ConfigError
from monalia.progress import Progress
from monalia.project import Project
from monalia.rdf.thesaurus import Thesaurus, open_project_thesaurus
from monalia.stages.label.datasets import (
    DatasetPlan,
    dataset_folder,
    export_dataset,
    plan_dataset,
    store_dataset,
)


def record_sources(catalog: Catalog, wanted: list[str]) -> list[str]:
    """The sources to label: those asked for (each must have records), else all of them."""
    with catalog.session() as session:
        available = list(
            session.scalars(select(RecordRow.source).distinct().order_by(RecordRow.source))
        )
    for name in wanted:
        if name not in available:
            raise ConfigError(
                f"[dataset] sources: the catalog holds no records of {name!r} "
                f"(it has: {', '.join(available) or 'none'})"
            )
    return wanted or available


def iter_record_subjects(
    catalog: Catalog,
    sources: list[str],
    progress: Progress | None = None,
    fields: tuple[str, ...] = (),
) -> Iterator[tuple[int, list[Subject]]]:
    """(record id, subjects) for every record of `sources`, records without subjects included;
    with `fields`, only the subjects from those source fields (a task's)."""
    with catalog.session() as session:
        query = (
            select(
                RecordRow.id, SubjectRow.uri, SubjectRow.label, SubjectRow.lang, SubjectRow.field
            )
            .outerjoin(SubjectRow, SubjectRow.record_id == RecordRow.id)
            .where(RecordRow.source.in_(sources), RecordRow.deleted_at.is_(None))
            .order_by(RecordRow.id, SubjectRow.position)
            .execution_options(yield_per=10_000)
        )
        current: int | None = None
        subjects: list[Subject] = []
        for record_id, uri, label, lang, field in session.execute(query):
            if record_id != current:
                if current is not None:
                    yield current, subjects
                    if progress is not None:
                        progress.advance(1)
                current, subjects = record_id, []
            if (uri is not None or label is not None) and (not fields or field in fields):
                subjects.append(Subject(uri=uri, label=label, lang=lang, field=field))
        if current is not None:
            yield current, subjects
            if progress is not None:
                progress.advance(1)


@dataclass
class LabelOutcome:
    """What a label run produced."""

    run: RunInfo | None
    classes: list[TargetClass]
    labeling: Labeling
    plan: DatasetPlan | None = None
    dataset_id: int | None = None
    created: bool = False
    exported: list[Any] | None = None
    warnings: list[str] | None = None


def class_concepts(
    labeler: Labeler, classes: list[TargetClass], thesaurus: Thesaurus, language: str | None
) -> dict[str, dict[str, list[str]]]:
    """What each class covers, as the dataset keeps it: class URI -> {concept URI: labels}.

    The concepts are the labeler's (`Labeler.class_concepts`), else the thesaurus's expansion;
    the labels are the concepts' labels in the project's language, lower-cased, as curation
    matches a record's subject text against them.
    """
    from monalia.rdf.thesaurus import language_matches

    given = labeler.class_concepts() or {}
    covered = {
        target.uri: set(given.get(target.uri) or thesaurus.expand(target.uri)) | {target.uri}
        for target in classes
    }
    wanted = set().union(*covered.values()) if covered else set()
    labels: dict[str, set[str]] = {concept: set() for concept in wanted}
    # notations count as a mention only where the labeler matched them
    kinds = getattr(labeler, "kinds", None) or set()
    for entries in thesaurus.labels().values():
        for entry in entries:
            if entry.kind == "notation" and "notation" not in kinds:
                continue
            if entry.concept in labels and language_matches(entry.lang, language):
                labels[entry.concept].add(entry.text.lower())
    for target in classes:  # a class taught by curators has no thesaurus labels: its own
        if not any(labels.get(concept) for concept in covered[target.uri]):
            labels[target.uri].add(target.label.lower())
    return {
        uri: {concept: sorted(labels[concept]) for concept in sorted(concepts)}
        for uri, concepts in covered.items()
    }


def near_duplicate_pairs(
    catalog: Catalog, project: Project, tracker=None, progress=None
) -> list[tuple[str, str]]:
    """Content hashes of the catalog's near-duplicate images (`[similarity] split`), embedding
    the fetched images that have no vector yet; none when the split is not asked for or the
    embedder cannot run here (no torch)."""
    section = project.file.similarity
    if not section.split:
        return []
    try:
        import faiss  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        if tracker is not None:
            tracker.event(
                "near duplicates not looked for: the train extra is not installed",
                level="warning",
            )
        return []
    from monalia.similarity.near_duplicates import embedding, near_pairs

    found = near_pairs(catalog, project, embedding(catalog, project), section.threshold)
    return [(a, b) for a, b, _score in found.pairs]


def excluded_images(catalog: Catalog, kinds: list[str], tracker=None) -> dict[int, list[str]]:
    """Image id -> the problems of `kinds` `monalia audit` found in it (`[dataset]
    exclude_problems`); says so when no audit found anything to leave out."""
    if not kinds:
        return {}
    from monalia.curation.audit import images_with_problems, problem_counts

    found = images_with_problems(catalog, kinds)
    if not found and tracker is not None:
        audited = problem_counts(catalog)
        tracker.event(
            "exclude_problems is set but "
            + (
                "no audit has run: `monalia audit` finds them"
                if not audited
                else "the audit found none of these problems"
            ),
            level="warning" if not audited else "info",
        )
    return found


def add_taught_classes(catalog: Catalog, labeling: Labeling) -> list[dict[str, Any]]:
    """Add the classes curators taught (`monalia teach`) to the labeling; their answers come in
    with the other review decisions (`apply_review_decisions`)."""
    from monalia.api.labeler import TargetClass
    from monalia.curation.teach import taught_labels

    known = {target.uri for target in labeling.classes}
    added = []
    for cls, given in taught_labels(catalog):
        if cls.uri in known or not any(given.values()):
            continue  # a thesaurus class already, or nothing shows it yet
        labeling.classes.append(TargetClass(cls.uri, cls.label))
        known.add(cls.uri)
        added.append(
            {
                "uri": cls.uri,
                "label": cls.label,
                "positives": sum(given.values()),
                "negatives": sum(not v for v in given.values()),
            }
        )
    return added


def apply_review_decisions(catalog: Catalog, labeling: Labeling) -> dict[str, Any]:
    """Take the curators' decisions (`monalia serve`) into the labels before the dataset is
    planned: an accepted silence or search result adds the class to the record, an accepted
    noise finding removes it; a rejected finding confirms the metadata. Returns what was used."""
    from monalia.catalog.reviews import reviews

    known = {target.uri for target in labeling.classes}
    counts = {"used": 0, "added": 0, "removed": 0, "confirmed": 0, "disputed": 0, "other": 0}
    verdicts = [
        (review, review.verdict)
        for review in reviews(catalog).values()
        if review.verdict and review.verdict.kind != "duplicate"
    ]
    if not verdicts:
        return counts
    iris = sorted({review.record_iri for review, _ in verdicts})
    ids: dict[str, int] = {}
    with catalog.session() as session:
        for start in range(0, len(iris), 500):
            rows = session.execute(
                select(RecordRow.iri, RecordRow.id).where(
                    RecordRow.iri.in_(iris[start : start + 500]), RecordRow.deleted_at.is_(None)
                )
            )
            ids.update({iri: id_ for iri, id_ in rows})
    for review, verdict in verdicts:
        record_id = ids.get(review.record_iri)
        if record_id is None or review.class_uri not in known:
            counts["other"] += 1  # a record gone, or a class this dataset does not have
            continue
        labels = labeling.assignments.get(record_id, set())
        counts["used"] += 1
        counts["disputed"] += review.disputed
        if verdict.present and review.class_uri not in labels:
            labeling.assignments[record_id] = labels | {review.class_uri}
            labeling.records_without_class.discard(record_id)
            counts["added"] += 1
        elif verdict.present is False and review.class_uri in labels:
            labels = labels - {review.class_uri}
            if labels:
                labeling.assignments[record_id] = labels
            else:  # an image that shows none of the classes: a negative
                del labeling.assignments[record_id]
                labeling.records_without_class.add(record_id)
            counts["removed"] += 1
        else:
            counts["confirmed"] += 1
    return counts


def label_records(
    catalog: Catalog,
    project: Project,
    hooks=None,
    progress: Progress | None = None,
    build: bool = True,
    on_thesaurus=None,
) -> LabelOutcome:
    """Label the catalog's records and, when `build` is set, store and export their dataset."""
    project = project.for_task()
    task = project.task
    section = project.file.dataset
    sources = record_sources(catalog, section.sources)
    settings = section.model_dump(mode="json", exclude={"name", "export", "exclude_problems"})
    if section.exclude_problems:  # a dataset made without the setting keeps its identity
        settings["exclude_problems"] = section.exclude_problems
    settings["sources"] = sources
    if task.fields:  # a task over some fields only: part of its dataset's identity
        settings["fields"] = list(task.fields)
    thesaurus = open_project_thesaurus(project, progress=on_thesaurus)
    try:
        labeler, classes = prepare_labeler(project, thesaurus)
        warnings = list(getattr(labeler, "warnings", []))
        if not build:
            labeling = labeler.label(
                classes, iter_record_subjects(catalog, sources, progress, task.fields)
            )
            return LabelOutcome(None, classes, labeling, warnings=warnings)
        run_settings = {
            "dataset": settings,
            "labeler": project.labeler.info.name,
            "labeler_settings": labeler.describe_settings(),
            "classes": [target.uri for target in classes],
            "thesaurus": thesaurus.fingerprint(),
        }
        with RunTracker(
            catalog, "label", project.labeler.info.name, section.name, run_settings, hooks
        ) as tracker:
            for warning in warnings:
                tracker.event(warning, level="warning")
            if progress is not None:
                progress.set_total(count_records(catalog, sources))
            labeling = labeler.label(
                classes, iter_record_subjects(catalog, sources, progress, task.fields)
            )
            count_labeling(tracker, labeling)
            stored = store_subject_matches(
                catalog, section.name, labeling, thesaurus.fingerprint(), tracker.id
            )
            if stored:
                tracker.event(
                    f"{stored} subject texts resolved to concepts (`monalia label --matched` "
                    "lists them; `monalia publish` writes them as the matched-subjects graph)",
                    level="info",
                )
            # taught classes join the project's first task (teaching names no field)
            first = task.name == project.task_names()[0]
            taught = add_taught_classes(catalog, labeling) if first else []
            for entry in taught:
                tracker.event(
                    f"taught class {entry['label']}: {entry['positives']} positives, "
                    f"{entry['negatives']} negatives (`monalia teach`)",
                    level="info",
                )
            feedback = apply_review_decisions(catalog, labeling)
            if feedback["used"]:
                tracker.event(
                    f"{feedback['used']} review decisions taken in: {feedback['added']} labels "
                    f"added, {feedback['removed']} removed, {feedback['confirmed']} confirmed",
                    level="info",
                )
            near = near_duplicate_pairs(catalog, project, tracker, progress)
            excluded = excluded_images(catalog, section.exclude_problems, tracker)
            plan = plan_dataset(catalog, labeling, settings, section.name, near, excluded)
            left_out = plan.stats["excluded_problems"]
            if left_out["records"]:
                kinds = ", ".join(f"{kind} {n}" for kind, n in left_out["kinds"].items())
                tracker.event(
                    f"{left_out['records']} records left out for their image's problems ({kinds})",
                    level="info",
                )
            plan.stats["review_decisions"] = feedback
            plan.stats["taught_classes"] = taught
            if plan.stats["near_duplicate_groups"]:
                tracker.event(
                    f"{plan.stats['near_duplicate_groups']} groups of near-duplicate images kept "
                    f"on one side of the split ({plan.stats['near_duplicate_moved']} images moved)",
                    level="info",
                )
            concepts = class_concepts(
                labeler, plan.classes, thesaurus, project.file.classes.language
            )
            row, created = store_dataset(catalog, plan, tracker.id, concepts)
            exported = export_dataset(
                catalog, row, dataset_folder(project.data_dir, row), section.export
            )
            message = (
                f"dataset {row.name} {row.hash[:12]}: {plan.stats['images']} images, "
                f"{len(plan.classes)} classes"
                + ("" if created else " (unchanged: the same dataset already exists)")
            )
            info = tracker.finish(DONE, message)
        return LabelOutcome(
            info, classes, labeling, plan, row.id, created, exported, warnings=warnings
        )
    finally:
        thesaurus.close()


def store_subject_matches(
    catalog: Catalog, dataset: str, labeling: Labeling, thesaurus: str, run_id: int
) -> int:
    """Replace the dataset's resolved subject texts with this labelling's."""
    from sqlalchemy import delete, insert

    from monalia.catalog.models import SubjectMatchRow

    rows = [
        {
            "record_id": record_id,
            "dataset": dataset,
            "field": field,
            "text": text,
            "lang": lang,
            "concept": concept,
            "how": how,
            "thesaurus": thesaurus,
            "run_id": run_id,
        }
        for record_id, field, text, lang, concept, how in dict.fromkeys(labeling.matches)
    ]
    with catalog.session() as session:
        session.execute(delete(SubjectMatchRow).where(SubjectMatchRow.dataset == dataset))
        for start in range(0, len(rows), 5000):
            session.execute(insert(SubjectMatchRow), rows[start : start + 5000])
        session.commit()
    return len(rows)


def count_labeling(tracker: RunTracker, labeling: Labeling) -> None:
    """A label run's counts: a record labelled is new, one with no class unchanged; the subject
    labels that matched no concept are said, not failed (the records are not lost)."""
    tracker.add(
        seen=labeling.records_seen,
        new=len(labeling.assignments),
        unchanged=labeling.records_seen - len(labeling.assignments),
    )
    if labeling.unmatched:
        tracker.event(
            f"{len(labeling.unmatched)} distinct subject labels "
            f"({sum(labeling.unmatched.values())} occurrences) matched no concept: "
            "`monalia label --unmatched` lists them",
            level="info",
        )
