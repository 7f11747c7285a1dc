"""What `monalia search` and `monalia report` need from a project: a store, a model, classes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monalia.catalog.orm_reader import reader_of
from monalia.catalog.reader import image_file
from monalia.classes import model_classes
from monalia.curation.findings import (
    Curation,
    CurationClass,
    Finding,
    OutOfSample,
    ThresholdOverride,
)
from monalia.errors import ConfigError
from monalia.net.sparql_endpoint import sparql_client
from monalia.project import Project
from monalia.rdf.scores import model_graph_iri

# `catalog` below is a `Catalog` or a `CatalogReader` (the commands a user waits on at the
# terminal read without SQLAlchemy): both answer the lookups of `reader_of`.


@dataclass
class CurationSetup:
    curation: Curation
    model: Any  # a ModelRow, or a ModelView from a CatalogReader
    store: str  # where the queries go, for messages
    method: str = "threshold"  # how noise and silence are found
    note: str | None = None  # why the method is not the one asked for, when it is not


def out_of_sample(catalog, model, classes: list[CurationClass]) -> OutOfSample | None:
    """The `confident` method's findings over the model's dataset, from the newest set of
    out-of-sample scores made for the model (`monalia train --folds K`); None without one.

    They are read as `monalia train --folds` stored them; a set made before findings were
    stored has them computed here (cleanlab, seconds), until the folds are run again."""
    reader = reader_of(catalog)
    found = [entry for entry in reader.score_sets() if entry[2].get("model") == model.name]
    if not found or model.dataset_id is None:
        return None
    set_id, set_name, card = found[0]
    by_uri = {cls.uri: cls for cls in classes}
    covers_all = reader.scored_outside(model.id, set_id) == 0

    def findings(kind: str, rows) -> list[Finding]:
        made = []
        for uri, iri, url, score in rows:
            cls = by_uri.get(uri)
            if cls is not None:
                made.append(
                    Finding(
                        iri,
                        cls.uri,
                        cls.label,
                        score,
                        url,
                        annotated=kind == "noise",
                        method="confident",
                        scores=set_name,
                    )
                )
        return made

    if "confident_findings" in card:

        def read(kind: str) -> list[Finding]:  # only the kind a report asks for is read
            rows = reader.confident_findings(set_id, kind)
            return findings(
                kind, ((uri, iri, url, float(score)) for _, uri, _, iri, url, _, score in rows)
            )

        # with every scored image in the set, no record is left to compare with them
        records = frozenset() if covers_all else frozenset(reader.scored_records(set_id))
    else:
        import numpy as np

        from monalia.curation.confident_learning import issue_rows, read_score_set

        uris = [cls.uri for cls in classes]
        computed = read_score_set(reader, set_id, set_name, model.dataset_id, uris)
        rows = issue_rows(computed, uris)

        def read(kind: str) -> list[Finding]:
            return findings(
                kind, ((r.class_uri, r.record, r.url, r.score) for r in rows if r.kind == kind)
            )

        scored = ~np.isnan(computed.scores).any(axis=1)  # the folds could not read the others
        records = frozenset(
            image[1] for image, ok in zip(computed.images, scored, strict=True) if ok
        )
    return OutOfSample(set_name, records, read, covers_all)


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
        return sparql_client(wanted, project.dir, policy=project.url_policy)
    client = instance.create().query_client()
    if client is None:
        raise ConfigError(
            f"sink {wanted} ({instance.info.name}) cannot be queried: name a sink that can "
            "(embedded-store, sparql-store, a single-file turtle), an endpoint URL, a store "
            "folder or an RDF file"
        )
    return client


RECORDS_PRESENT = (
    "PREFIX ml: <http://ns.inria.fr/monalia/>\n"
    "SELECT ?record WHERE { { ?record a ml:Record } UNION { GRAPH ?g { ?record a ml:Record } } }"
    " LIMIT 1"
)


def require_records(client) -> None:
    """Refuse a store without published records: every annotation would read as absent, and
    noise and silence would be silently wrong (enrich writes the scores; publish the records)."""
    if not client.select(RECORDS_PRESENT):
        raise ConfigError(
            f"the store {client.endpoint} holds no published records, so the scores cannot be "
            "compared with any annotation: run `monalia publish` (enrich writes the scores, "
            "publish the records), or name the store that has them with --store"
        )


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
    from monalia.catalog.reader import is_score_set

    section = project.file.report
    model = reader_of(catalog).find_model(
        model_ref or section.model or project.file.enrich.model, project.model_dataset
    )
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
    require_records(client)
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
    from monalia.rdf.mentions import mentions_graph_iri

    mentions = mentions_graph_iri(project.file.project.base_iri, model.name)
    curation = Curation(client, graph, classes, model.name, oos, mentions)
    return CurationSetup(curation, model, client.endpoint, method, note)


def pick_classes(setup: CurationSetup, names: tuple[str, ...]) -> list[CurationClass] | None:
    from monalia.curation.findings import find_class

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
