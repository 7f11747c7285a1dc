"""The curators' decisions as data for the institution: changes to apply, and a PROV-O graph.

`accepted_changes` turns the decisions that count (`monalia.catalog.reviews`) into what the
collection's own system must change: per record, the field, add or remove, the term's URI and
label. A decision that agrees with the metadata as it stands changes nothing (it confirms it).
`curation_triples` is the curation graph documented in ``ontology/curation.md`` and checked by
``ontology/shapes.ttl``: each decision a `prov:Activity` of a reviewer (`prov:Agent`) that used
the model's detection, and each change a `prov:Entity` it generated.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

from sqlalchemy import select

from monalia.catalog.models import RecordRow, SubjectRow
from monalia.catalog.reviews import Decision, reviews
from monalia.curation.findings import CurationClass, Mentions
from monalia.project import Project
from monalia.rdf.scores import (
    SCORE_DECIMALS,
    classification_iri,
    detection_iri,
    model_iri,
    region_triples,
)
from monalia.rdf.terms import FOAF, IRI, ML, PROV, RDF, RDFS, XSD, Literal, Triple

DEFAULT_FIELD = "subject"  # where an added term goes when the record's source has no subjects
ADD, REMOVE = "add", "remove"


def curation_graph_iri(base_iri: str) -> str:
    return f"{base_iri}graph/curation"


@dataclass
class Change:
    """One change to a record's metadata that a curator's decision calls for."""

    record: str
    source: str
    reference: str  # the record's reference in its source, as in every other output
    field: str
    action: str  # add or remove
    term_uri: str | None
    term_label: str | None
    class_uri: str
    class_label: str | None
    decision_id: int
    reviewer: str
    decided_at: str
    model: str | None
    score: float | None
    comment: str | None
    disputed: bool


@dataclass
class ReviewExport:
    changes: list[Change]
    decisions: list[Decision]  # every reviewer's effective accept or reject
    confirmed: int  # decisions that agree with the metadata as it is


def _classes_of(catalog, project: Project, model_name: str | None) -> list[CurationClass]:
    from monalia.catalog.orm_reader import reader_of
    from monalia.classes import model_classes

    model = reader_of(catalog).find_model(model_name, project.model_dataset)
    return model_classes(catalog, project, model)


def _change(review, row, verdict: Decision, field: str, action: str, uri, label) -> Change:
    return Change(
        review.record_iri,
        row.source,
        row.source_id,
        field,
        action,
        uri,
        label,
        review.class_uri,
        verdict.class_label,
        verdict.id,
        verdict.reviewer,
        verdict.decided_at.isoformat(timespec="seconds"),
        verdict.model_name,
        verdict.score,
        verdict.comment,
        review.disputed,
    )


def accepted_changes(catalog, project: Project) -> ReviewExport:
    """The changes the decisions that count call for, record by record."""
    found = [
        review
        for review in reviews(catalog).values()
        if review.verdict is not None and review.verdict.kind != "duplicate"
    ]
    decisions = sorted(
        (d for review in found for d in review.by_reviewer.values() if d.decision != "skip"),
        key=lambda d: d.id,
    )
    classes_by_model: dict[str | None, dict[str, CurationClass]] = {}
    mentions_by_model: dict[str | None, Mentions] = {}
    iris = sorted({review.record_iri for review in found})
    records: dict[str, Any] = {}
    subjects: dict[int, list[tuple[str | None, str | None, str | None]]] = {}
    fields: dict[str, str] = {}
    with catalog.session() as session:
        for start in range(0, len(iris), 500):
            for row in session.execute(
                select(RecordRow.id, RecordRow.iri, RecordRow.source, RecordRow.source_id).where(
                    RecordRow.iri.in_(iris[start : start + 500])
                )
            ):
                records[row.iri] = row
        ids = [row.id for row in records.values()]
        for start in range(0, len(ids), 500):
            for record_id, uri, label, field in session.execute(
                select(SubjectRow.record_id, SubjectRow.uri, SubjectRow.label, SubjectRow.field)
                .where(SubjectRow.record_id.in_(ids[start : start + 500]))
                .order_by(SubjectRow.record_id, SubjectRow.position)
            ):
                subjects.setdefault(record_id, []).append((uri, label, field))
        for source in sorted({row.source for row in records.values()}):
            counted = Counter(
                session.scalars(
                    select(SubjectRow.field)
                    .join(RecordRow, RecordRow.id == SubjectRow.record_id)
                    .where(RecordRow.source == source, SubjectRow.field.is_not(None))
                    .limit(10_000)
                )
            )
            fields[source] = counted.most_common(1)[0][0] if counted else DEFAULT_FIELD
    from monalia.catalog.reviews import region_corrections

    # the boxes curators drew go out with the decisions (they change no label)
    decisions = sorted([*decisions, *region_corrections(catalog)], key=lambda d: d.id)
    changes: list[Change] = []
    confirmed = 0
    for review in sorted(found, key=lambda r: (r.record_iri, r.class_uri)):
        verdict = review.verdict
        row = records.get(review.record_iri)
        if row is None:
            continue  # a record no longer in the catalog
        if verdict.model_name not in classes_by_model:
            known = _classes_of(catalog, project, verdict.model_name)
            classes_by_model[verdict.model_name] = {c.uri: c for c in known}
            mentions_by_model[verdict.model_name] = Mentions(known)
        cls = classes_by_model[verdict.model_name].get(review.class_uri)
        own = subjects.get(row.id, [])
        mentioned = cls is not None and review.class_uri in mentions_by_model[
            verdict.model_name
        ].of((uri, label) for uri, label, _ in own)

        if verdict.present and not mentioned:
            label = cls.label if cls is not None else verdict.class_label
            changes.append(
                _change(review, row, verdict, fields[row.source], ADD, review.class_uri, label)
            )
        elif verdict.present is False and mentioned:
            for uri, label, field in own:
                if (uri and uri in cls.concepts) or (label and label.lower() in cls.labels):
                    changes.append(
                        _change(review, row, verdict, field or DEFAULT_FIELD, REMOVE, uri, label)
                    )
        else:
            confirmed += 1
    return ReviewExport(changes, decisions, confirmed)


def change_dict(entry: Change) -> dict[str, Any]:
    """A change as the outputs name its fields: the class's URI is `class`, as in findings and
    decisions."""
    return {("class" if key == "class_uri" else key): value for key, value in asdict(entry).items()}


CHANGE_FIELDS = [("class" if name == "class_uri" else name) for name in Change.__dataclass_fields__]


def changes_csv(export: ReviewExport) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CHANGE_FIELDS, lineterminator="\n")
    writer.writeheader()
    for entry in export.changes:
        writer.writerow(change_dict(entry))
    return out.getvalue()


def changes_json(export: ReviewExport) -> str:
    return json.dumps(
        {
            "changes": [change_dict(entry) for entry in export.changes],
            "decisions": [decision.as_dict() for decision in export.decisions],
            "confirmed": export.confirmed,
        },
        indent=2,
        ensure_ascii=False,
    )


def _slug(text: str) -> str:
    return quote(text, safe="")


def curation_triples(export: ReviewExport, base_iri: str) -> Iterator[Triple]:
    """The curation graph: decisions as PROV-O activities, changes as the entities they made."""
    agents: set[str] = set()
    for decision in export.decisions:
        activity = IRI(f"{base_iri}review/decision/{decision.id}")
        agent = IRI(f"{base_iri}reviewer/{_slug(decision.reviewer)}")
        if agent not in agents:
            agents.add(agent)
            yield agent, RDF + "type", IRI(PROV + "Agent")
            yield agent, FOAF + "name", Literal(decision.reviewer)
        yield activity, RDF + "type", IRI(PROV + "Activity")
        yield activity, RDF + "type", IRI(ML + "ReviewDecision")
        yield activity, PROV + "wasAssociatedWith", agent
        yield (
            activity,
            PROV + "endedAtTime",
            Literal(
                decision.decided_at.isoformat().replace("+00:00", "Z"), datatype=XSD + "dateTime"
            ),
        )
        yield activity, ML + "decision", IRI(ML + decision.decision.capitalize())
        yield activity, ML + "findingKind", Literal(decision.kind)
        yield activity, ML + "reviewedRecord", IRI(decision.record_iri)
        yield activity, ML + "reviewedClass", IRI(decision.class_uri)
        yield (
            activity,
            ML + "imageShowsClass",
            Literal("true" if decision.present else "false", datatype=XSD + "boolean"),
        )
        if decision.model_name:
            yield activity, ML + "reviewedModel", IRI(model_iri(base_iri, decision.model_name))
            if decision.image_url:
                classification = classification_iri(
                    base_iri, decision.model_name, decision.record_iri, decision.image_url
                )
                yield (
                    activity,
                    PROV + "used",
                    IRI(detection_iri(classification, decision.class_uri)),
                )
        if decision.score is not None:
            yield (
                activity,
                ML + "scoreAtReview",
                Literal(f"{decision.score:.{SCORE_DECIMALS}f}", datatype=XSD + "float"),
            )
        if decision.comment:
            yield activity, RDFS + "comment", Literal(decision.comment)
        if decision.region is not None and decision.image_url:
            # the box the curator drew, shaped as the model's regions are
            yield from region_triples(str(activity), decision.image_url, [decision.region])
    for entry in export.changes:
        node = IRI(
            f"{base_iri}review/change/{entry.decision_id}/{entry.action}/"
            f"{_slug(entry.term_uri or entry.term_label or '')}"
        )
        yield node, RDF + "type", IRI(PROV + "Entity")
        yield node, RDF + "type", IRI(ML + "SubjectChange")
        yield node, PROV + "wasGeneratedBy", IRI(f"{base_iri}review/decision/{entry.decision_id}")
        yield (
            node,
            ML + "action",
            IRI(ML + ("AddSubject" if entry.action == ADD else "RemoveSubject")),
        )
        yield node, ML + "changedRecord", IRI(entry.record)
        yield node, ML + "field", Literal(entry.field)
        if entry.term_uri:
            yield node, ML + "term", IRI(entry.term_uri)
        if entry.term_label:
            yield node, RDFS + "label", Literal(entry.term_label)


def curation_turtle(export: ReviewExport, base_iri: str) -> str:
    from monalia.rdf.terms import TurtleWriter

    out = io.StringIO()
    writer = TurtleWriter(out)
    writer.write(curation_triples(export, base_iri))
    writer.close()
    return out.getvalue()


def publish_curation(catalog, project: Project, sinks: list[str] | None = None) -> dict[str, int]:
    """Publish the curation graph to the project's sinks (all, or those named): triples each."""
    from monalia.errors import ConfigError

    export = accepted_changes(catalog, project)
    base = project.file.project.base_iri
    graph = curation_graph_iri(base)
    wanted = sinks or list(project.sinks)
    written: dict[str, int] = {}
    for name in wanted:
        instance = project.sinks.get(name)
        if instance is None:
            known = ", ".join(project.sinks) or "none"
            raise ConfigError(f"no sink {name!r} in the project (its sinks: {known})")
        if not instance.info.cls.takes_triples:  # an annotation sink: links and reviews
            from monalia.stages.annotations import publish_curation_annotations

            written[name] = publish_curation_annotations(catalog, instance).counts["new"]
            continue
        sink = instance.create()
        counts = sink.publish([(graph, curation_triples(export, base))])
        written[name] = sum(counts.values())
    return written
