"""The publish stage: the catalog's records as RDF, one named graph per source, to a sink,
and the subjects `monalia label` matched from text, one named graph per task's dataset.

Each source's graph is written whole, so a record deleted at its source (kept in the catalog,
marked deleted) is no longer in the sinks after the next publish.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from monalia.catalog.database import Catalog
from monalia.catalog.models import RecordRow
from monalia.catalog.run_tracking import (
    DONE,
    RunInfo,
    RunTracker,
)
from monalia.errors import MonaliaError
from monalia.progress import Progress
from monalia.project import PluginInstance
from monalia.rdf.terms import Triple, record_triples, records_graph_iri

PAGE = 1000


def catalog_sources(catalog: Catalog) -> list[str]:
    """The source instances that have records in the catalog."""
    with catalog.session() as session:
        return list(session.scalars(select(RecordRow.source).distinct().order_by(RecordRow.source)))


def iter_record_triples(
    catalog: Catalog, source: str, tracker: RunTracker | None = None
) -> Iterator[Triple]:
    """Every triple of one source's records, read a page at a time (memory stays flat)."""
    last_id = 0
    while True:
        with catalog.session() as session:
            rows = session.scalars(
                select(RecordRow)
                .where(RecordRow.source == source, RecordRow.id > last_id)
                .order_by(RecordRow.id)
                .limit(PAGE)
                .options(selectinload(RecordRow.subjects), selectinload(RecordRow.images))
            ).all()
        if not rows:
            return
        written = 0
        for row in rows:
            if row.deleted_at is None:  # a record deleted at its source leaves the graph
                written += 1
                yield from record_triples(row)
        if tracker is not None:  # written: new; left out of the graph: changed
            tracker.add(seen=len(rows), new=written, changed=len(rows) - written)
        last_id = rows[-1].id


def matched_subject_graphs(
    catalog: Catalog, base_iri: str, sources: list[str]
) -> Iterator[tuple[str, Iterator[Triple]]]:
    """One graph per task's dataset of the subject texts `monalia label` resolved to concepts
    (`monalia.rdf.matched_subjects`), for the records of `sources` still at their source."""
    from monalia.catalog.models import SubjectMatchRow
    from monalia.rdf.matched_subjects import match_triples, matched_subjects_graph_iri

    with catalog.session() as session:
        datasets = list(
            session.scalars(select(SubjectMatchRow.dataset).distinct().order_by("dataset"))
        )

    def rows(dataset: str):
        last = 0
        while True:
            with catalog.session() as session:
                page = session.execute(
                    select(
                        SubjectMatchRow.id,
                        RecordRow.iri,
                        SubjectMatchRow.field,
                        SubjectMatchRow.text,
                        SubjectMatchRow.lang,
                        SubjectMatchRow.concept,
                        SubjectMatchRow.how,
                        SubjectMatchRow.thesaurus,
                        SubjectMatchRow.run_id,
                    )
                    .join(RecordRow, RecordRow.id == SubjectMatchRow.record_id)
                    .where(
                        SubjectMatchRow.dataset == dataset,
                        SubjectMatchRow.id > last,
                        RecordRow.source.in_(sources),
                        RecordRow.deleted_at.is_(None),
                    )
                    .order_by(SubjectMatchRow.id)
                    .limit(PAGE * 10)
                ).all()
            if not page:
                return
            last = page[-1][0]
            for row in page:
                yield tuple(row[1:])

    for dataset in datasets:
        graph = matched_subjects_graph_iri(base_iri, dataset)
        yield graph, match_triples(base_iri, graph, rows(dataset))


def record_mentions(catalog: Catalog, mentions) -> Iterator[tuple[str, frozenset[str]]]:
    """(record IRI, classes it mentions) of every record still at its source that mentions
    one, by its subjects and the concepts `monalia label` matched from its texts, a page at a
    time. `mentions` is a `monalia.curation.findings.Mentions`."""
    from monalia.catalog.models import SubjectMatchRow, SubjectRow

    last_id = 0
    while True:
        with catalog.session() as session:
            page = session.execute(
                select(RecordRow.id, RecordRow.iri)
                .where(RecordRow.id > last_id, RecordRow.deleted_at.is_(None))
                .order_by(RecordRow.id)
                .limit(PAGE * 10)
            ).all()
            if not page:
                return
            first, last_id = page[0][0], page[-1][0]
            subjects: dict[int, list[tuple[str | None, str | None]]] = {}
            for record_id, uri, label in session.execute(
                select(SubjectRow.record_id, SubjectRow.uri, SubjectRow.label).where(
                    SubjectRow.record_id.between(first, last_id)
                )
            ):
                subjects.setdefault(record_id, []).append((uri, label))
            for record_id, concept in session.execute(
                select(SubjectMatchRow.record_id, SubjectMatchRow.concept).where(
                    SubjectMatchRow.record_id.between(first, last_id)
                )
            ):
                subjects.setdefault(record_id, []).append((concept, None))
        for record_id, iri in page:
            found = mentions.of(subjects.get(record_id, ()))
            if found:
                yield iri, found


def queried_by_reports(configured: PluginInstance) -> bool:
    """Whether this sink gets the mention index: a store the reports query (the embedded
    store, a SPARQL store) where a graph is replaced alone."""
    if not configured.info.cls.keeps_other_graphs:
        return False
    try:
        return configured.create().query_client() is not None
    except MonaliaError:
        return False


def mention_graphs(
    catalog: Catalog, base_iri: str, mentions_by_model: dict
) -> Iterator[tuple[str, Iterator[Triple]]]:
    """The mention index of each model (`monalia.rdf.mentions`) from the catalog's records."""
    from monalia.rdf.mentions import mention_triples, mentions_graph_iri
    from monalia.rdf.scores import model_iri

    for name, mentions in mentions_by_model.items():
        graph = mentions_graph_iri(base_iri, name)
        pairs = record_mentions(catalog, mentions)
        yield graph, mention_triples(graph, model_iri(base_iri, name), pairs)


def enriched_mentions(catalog: Catalog, project) -> dict:
    """Each task's enriched model (`[enrich] model`, else the newest with scores) with what
    counts as mentioning its classes: the mention indexes `monalia publish` rewrites."""
    from monalia.catalog.lookups import find_model
    from monalia.classes import project_mentions
    from monalia.errors import MonaliaError
    from monalia.stages.enrich.publishing import count_scored_images

    found = {}  # model name -> its Mentions
    for name in project.task_names():
        view = project.for_task(name) if project.tasks else project
        try:
            model = find_model(catalog, project.file.enrich.model, view.model_dataset)
        except MonaliaError:
            continue  # no model for this task yet
        if model.name not in found and count_scored_images(catalog, model.id):
            found[model.name] = project_mentions(catalog, view, model)
    return found


def publish_records(
    catalog: Catalog,
    configured: PluginInstance,
    sources: list[str] | None = None,
    hooks=None,
    progress: Progress | None = None,
    mentions: dict | None = None,
) -> RunInfo:
    """Write the records of `sources` (default: all in the catalog) to one configured sink,
    and the mention index of each model in `mentions` (model name -> its
    `monalia.curation.findings.Mentions`), so that it says what the records now say."""
    sink = configured.create()
    # the matched-subjects graphs span every source: written whole, with all of them only
    every_source = not sources
    sources = sources or catalog_sources(catalog)
    base_iri = configured.context.base_iri
    settings = {"settings": sink.describe_settings(), "sources": sources}
    progress = progress or Progress(f"publish to {configured.instance}", enabled=False)
    with (
        RunTracker(
            catalog, "publish", configured.info.name, configured.instance, settings, hooks
        ) as tracker,
        progress,
    ):
        graphs = chain(
            (
                (records_graph_iri(base_iri, source), iter_record_triples(catalog, source, tracker))
                for source in sources
            ),
            matched_subject_graphs(catalog, base_iri, sources) if every_source else (),
            mention_graphs(catalog, base_iri, mentions or {}),
        )
        try:
            written = sink.publish(graphs, progress=progress.advance)
        except OSError as exc:
            # name the sink and the file, not a bare PermissionError
            where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
            raise MonaliaError(
                f"sink {configured.instance} ({sink.location()}): cannot write{where}: "
                f"{exc.strerror or exc}"
            ) from None
        if hooks is not None:
            for graph, triples in written.items():
                hooks.graph_published(sink=sink, graph=graph, triples=triples, run=tracker.info)
        total = sum(written.values())
        return tracker.finish(
            DONE, f"{total:,} triples in {len(written)} graph(s) to {sink.location()}"
        )
