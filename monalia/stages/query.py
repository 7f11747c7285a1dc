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
    OutOfSample,
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

    def _rows(self, sql: str, params: dict[str, Any]) -> list[tuple]:
        from sqlalchemy import text

        with self.catalog.session() as session:
            return [tuple(row) for row in session.execute(text(sql), params)]

    def score_sets(self) -> list[tuple[int, str, dict[str, Any]]]:
        from sqlalchemy import select

        from monalia.catalog.models import ModelRow
        from monalia.lib.catalog_reader import SCORE_SET_NAME_LIKE, is_score_set

        with self.catalog.session() as session:
            rows = session.execute(
                select(ModelRow.id, ModelRow.name, ModelRow.card)
                .where(ModelRow.name.like(SCORE_SET_NAME_LIKE))
                .order_by(ModelRow.id.desc())
            ).all()
        return [(id_, name, card or {}) for id_, name, card in rows if is_score_set(card)]

    def dataset_images(self, dataset_id: int) -> list[tuple[int, str, str, list[str]]]:
        from monalia.lib.catalog_reader import _json

        rows = self._rows(
            "SELECT m.image_id, r.iri, i.url, m.labels FROM dataset_members m "
            "JOIN records r ON r.id = m.record_id JOIN images i ON i.id = m.image_id "
            "WHERE m.dataset_id = :dataset AND r.deleted_at IS NULL ORDER BY m.id",
            {"dataset": dataset_id},
        )
        return [(image, iri, url, _json(labels) or []) for image, iri, url, labels in rows]

    def set_scores(self, model_id: int) -> list[tuple[int, str, float]]:
        rows = self._rows(
            "SELECT p.image_id, c.uri, p.score FROM predictions p JOIN model_classes c "
            "ON c.model_id = p.model_id AND c.class_index = p.class_index "
            "WHERE p.model_id = :model",
            {"model": model_id},
        )
        return [(image, uri, float(score)) for image, uri, score in rows]

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
    method: str = "threshold"  # how noise and silence are found
    note: str | None = None  # why the method is not the one asked for, when it is not


def out_of_sample(catalog, model, classes: list[CurationClass]) -> OutOfSample | None:
    """The `confident` method's findings over the model's dataset, from the newest set of
    out-of-sample scores made for the model (`monalia train --folds K`); None without one."""
    import numpy as np

    from monalia.lib.confident import find_issues

    reader = reader_of(catalog)
    found = [entry for entry in reader.score_sets() if entry[2].get("model") == model.name]
    if not found or model.dataset_id is None:
        return None
    set_id, set_name, _ = found[0]
    images = reader.dataset_images(model.dataset_id)
    row_of = {image: row for row, (image, *_rest) in enumerate(images)}
    column_of = {cls.uri: column for column, cls in enumerate(classes)}
    scores = np.full((len(images), len(classes)), np.nan)
    for image, uri, score in reader.set_scores(set_id):
        row, column = row_of.get(image), column_of.get(uri)
        if row is not None and column is not None:
            scores[row, column] = score
    scored = ~np.isnan(scores).any(axis=1)  # images the folds could not read have no scores
    labels = np.zeros(scores.shape, dtype=int)
    for row, (_image, _iri, _url, given) in enumerate(images):
        for uri in given:
            if uri in column_of:
                labels[row, column_of[uri]] = 1
    kept = np.flatnonzero(scored)
    issues = find_issues(labels[kept], scores[kept])

    def findings(kind: str) -> list[Finding]:
        made = []
        for column, entry in enumerate(issues):
            cls = classes[column]
            for index in entry.noise if kind == "noise" else entry.silence:
                _image, iri, url, _given = images[int(kept[index])]
                made.append(
                    Finding(
                        iri,
                        cls.uri,
                        cls.label,
                        float(scores[kept[index], column]),
                        url,
                        annotated=kind == "noise",
                        method="confident",
                        scores=set_name,
                    )
                )
        return made

    records = frozenset(images[int(row)][1] for row in kept)
    return OutOfSample(set_name, records, findings("noise"), findings("silence"))


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
    method: str | None = None,
) -> CurationSetup:
    """Search and reports for a registered model over the configured (or named) store.

    `method` (default `[report] method`): "threshold" judges every record by the model's own
    scores and the card's thresholds; "confident" judges the records of the model's dataset by
    confident learning over their out-of-sample scores, the others by the thresholds. Without
    out-of-sample scores, "confident" falls back to "threshold" and says so in `note`.
    """
    from monalia.lib.catalog_reader import is_score_set

    section = project.file.report
    model = reader_of(catalog).find_model(model_ref or section.model or project.file.enrich.model)
    if is_score_set(model.card):
        raise ConfigError(
            f"{model.name} is the out-of-sample scores of {model.card.get('model')}: name that "
            "model (the confident method reads these scores for it)"
        )
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
    method = method or section.method
    oos, note = None, None
    if method == "confident":
        has_set = any(
            card.get("model") == model.name for _, _, card in reader_of(catalog).score_sets()
        )
        # computed when noise or silence is asked for, not for a search
        oos = (lambda: out_of_sample(catalog, model, classes)) if has_set else None
        if oos is None:
            method = "threshold"
            note = (
                f"model {model.name} has no out-of-sample scores (`monalia train --folds 5` "
                "makes them): noise and silence by the thresholds"
            )
    curation = Curation(client, graph, classes, model.name, oos)
    return CurationSetup(curation, model, client.endpoint, method, note)


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
