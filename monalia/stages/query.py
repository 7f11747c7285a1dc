"""What `monalia search` and `monalia report` need from a project: a store, a model, classes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monalia.errors import ConfigError
from monalia.lib.catalog_reader import BATCH, CatalogReader, image_file
from monalia.lib.curation import (
    Curation,
    CurationClass,
    Finding,
    Mentions,
    ThresholdOverride,
    curation_classes,
)
from monalia.lib.local_store import sparql_client
from monalia.lib.score_rdf import model_graph_iri
from monalia.project import Project

# `catalog` below is a `Catalog` or a `CatalogReader` (the commands a user waits on at the
# terminal read without SQLAlchemy): both answer the lookups of `reader_of`.


class OrmReader:
    """The reader's lookups over an open `Catalog`: any database SQLAlchemy speaks."""

    def __init__(self, catalog: Any):
        self.catalog = catalog

    def find_model(self, reference: str | None):
        from monalia.stages.train import find_model

        return find_model(self.catalog, reference)

    def class_concepts(self, dataset_id: int | None) -> dict[str, Any] | None:
        from sqlalchemy import select

        from monalia.catalog.models import DatasetRow

        if dataset_id is None:
            return None
        with self.catalog.session() as session:
            return session.scalar(
                select(DatasetRow.class_concepts).where(DatasetRow.id == dataset_id)
            )

    def image_paths(self, urls: list[str]) -> dict[str, str]:
        from sqlalchemy import select

        from monalia.catalog.models import ImageRow

        paths: dict[str, str] = {}
        with self.catalog.session() as session:
            for start in range(0, len(urls), BATCH):
                rows = session.execute(
                    select(ImageRow.url, ImageRow.path).where(
                        ImageRow.url.in_(urls[start : start + BATCH]), ImageRow.path.is_not(None)
                    )
                )
                paths.update({url: path for url, path in rows})
        return paths


def reader_of(catalog: Any) -> CatalogReader | OrmReader:
    """The lookups of a reader or of a `Catalog`."""
    return catalog if isinstance(catalog, CatalogReader | OrmReader) else OrmReader(catalog)


@dataclass
class CurationSetup:
    curation: Curation
    model: Any  # a ModelRow, or a ModelView from a CatalogReader
    store: str  # where the queries go, for messages


def report_client(project: Project, store: str | None):
    """The store to query: a sink instance by name, an endpoint URL, a folder or an RDF file.

    Without a name, the queryable sink of the lowest `query_priority` answers.
    """
    wanted = store or project.file.report.store
    if wanted is None:
        candidates = sorted(
            (instance for instance in project.sinks.values()),
            key=lambda instance: instance.info.cls.query_priority,
        )
        for instance in candidates:
            client = instance.create().query_client()
            if client is not None:
                return client
        raise ConfigError(
            "nothing to query: add a sink that can be queried (embedded-store, sparql-store, "
            "a single-file turtle) and run `monalia enrich`, or name a store with --store or "
            "[report] store"
        )
    instance = project.sinks.get(wanted)
    if instance is None:
        return sparql_client(wanted, project.dir)
    client = instance.create().query_client()
    if client is None:
        raise ConfigError(
            f"sink {wanted} ({instance.info.name}) cannot be queried: name a sink that can "
            "(embedded-store, sparql-store, a single-file turtle), an endpoint URL, a store "
            "folder or an RDF file"
        )
    return client


@dataclass
class ClassCoverage:
    """What each of a model's classes covers: concepts, their labels, or a thesaurus to ask."""

    expansions: dict[str, set[str]] | None = None
    concept_labels: dict[str, set[str]] | None = None
    thesaurus: Any = None

    def close(self) -> None:
        if self.thesaurus is not None:
            self.thesaurus.close()


def class_coverage(catalog, project: Project, model) -> ClassCoverage:
    """The concepts each class covered when the model's dataset was labelled, as the catalog
    keeps them; for a dataset made before datasets kept them, the project's labeler and
    thesaurus as they are today."""
    stored = reader_of(catalog).class_concepts(model.dataset_id)
    if stored:
        labels: dict[str, set[str]] = {}
        for concepts in stored.values():
            for concept, texts in concepts.items():
                labels.setdefault(concept, set()).update(texts)
        return ClassCoverage({uri: set(concepts) for uri, concepts in stored.items()}, labels, None)
    if not project.file.thesaurus.files:
        return ClassCoverage()
    from monalia.lib.thesaurus import open_project_thesaurus
    from monalia.stages.classes import prepare_labeler

    thesaurus = open_project_thesaurus(project)
    expansions = None
    if project.labeler is not None:
        labeler, _ = prepare_labeler(project, thesaurus)
        expansions = labeler.class_concepts()
    return ClassCoverage(expansions, None, thesaurus)


def model_classes(
    catalog,
    project: Project,
    model,
    overrides: dict[str, ThresholdOverride] | None = None,
    everywhere: ThresholdOverride | None = None,
) -> list[CurationClass]:
    """The model's classes, what counts as mentioning each, and their thresholds."""
    coverage = class_coverage(catalog, project, model)
    try:
        return curation_classes(
            model,
            coverage.expansions,
            coverage.thesaurus,
            project.file.classes.language,
            overrides,
            everywhere,
            concept_labels=coverage.concept_labels,
        )
    finally:
        coverage.close()


def project_mentions(catalog, project: Project, model) -> Mentions:
    """What counts as mentioning each of the model's classes."""
    return Mentions(model_classes(catalog, project, model))


def open_curation(
    catalog,
    project: Project,
    model_ref: str | None = None,
    store: str | None = None,
    below: float | None = None,
    above: float | None = None,
) -> CurationSetup:
    """Search and reports for a registered model over the configured (or named) store."""
    section = project.file.report
    model = reader_of(catalog).find_model(model_ref or section.model or project.file.enrich.model)
    classes = model_classes(
        catalog,
        project,
        model,
        {
            name: ThresholdOverride(entry.noise_below, entry.silence_above)
            for name, entry in section.classes.items()
        },
        ThresholdOverride(
            below if below is not None else section.noise_below,
            above if above is not None else section.silence_above,
        ),
    )
    client = report_client(project, store)
    graph = model_graph_iri(project.file.project.base_iri, model.name)
    return CurationSetup(Curation(client, graph, classes), model, client.endpoint)


def pick_classes(setup: CurationSetup, names: tuple[str, ...]) -> list[CurationClass] | None:
    from monalia.lib.curation import find_class

    if not names:
        return None
    return [find_class(setup.curation.classes, name) for name in names]


def add_local_images(catalog, project: Project, findings: list[Finding]) -> None:
    """Set each finding's `image_path` to the catalog's copy of its image, where there is one."""
    urls = sorted({f.image for f in findings})
    paths: dict[str, str] = {}
    for url, stored in reader_of(catalog).image_paths(urls).items():
        path = image_file(project.data_dir, stored)
        if path is not None and Path(path).is_file():
            paths[url] = str(path)
    for finding in findings:
        finding.image_path = paths.get(finding.image)
